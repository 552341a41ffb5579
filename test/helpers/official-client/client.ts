import type { B24PullClientManager } from '@bitrix24/b24jssdk';
import { describeSession, waitUntil, withinSession } from './diagnostics.ts';
import type { ReceivedEvent } from './inbox.ts';
import { closeSession, openSession, type OfficialClientOptions, type Session } from './session.ts';
import type { CloseRecord, ConnectionRecord, FrameRecord, PollAnswer, PublishRecord } from './tap.ts';
import { wireMessages, type DecodedWireMessage, type WireMessage } from './wire.ts';

/** A first long poll counts as connected only after 5 s without an answer. */
const START_TIMEOUT_MS = 10_000;
const WAIT_MS = 5_000;

/**
 * Starts the real Bitrix pull client (`@bitrix24/b24jssdk` B24PullClientManager)
 * in this process against a jetpull listener and waits until it is connected.
 */
export async function startOfficialClient(opts: OfficialClientOptions): Promise<OfficialClient> {
  const session = openSession(opts);
  try {
    await withinSession(session, 'client.start()', session.client.start(), START_TIMEOUT_MS);
  } catch (err) {
    await closeSession(session);
    throw err;
  }
  return new OfficialClient(session);
}

/** A running official client: what went over its wire, what reached its subscribers, and ways to cut its connection. */
export class OfficialClient {
  readonly client: B24PullClientManager;
  /** What reached the subscriber of server messages, in order. */
  readonly events: ReceivedEvent[];
  /** What reached the `type: 'client'` subscriber (messages other clients published), in order. */
  readonly clientEvents: ReceivedEvent[];
  /** Every WebSocket opened and every long poll sent. */
  readonly connections: ConnectionRecord[];
  /** WebSocket messages and long-poll 200 bodies received. */
  readonly frames: FrameRecord[];
  /** What the client sent over its WebSockets (v4: binary RequestBatches). */
  readonly sentFrames: FrameRecord[];
  readonly pollAnswers: PollAnswer[];
  /** Client publishes over long polling (XHR POSTs to `server.publish`). */
  readonly publishes: PublishRecord[];
  readonly closes: CloseRecord[];
  /** Exceptions the client threw in a socket or XHR event handler (a browser only reports them). */
  readonly handlerErrors: unknown[];
  /** REST methods the client called on the portal. */
  readonly restCalls: string[];
  private stopped = false;

  constructor(private readonly session: Session) {
    const { client, tap, inbox, restCalls } = session;
    this.client = client;
    this.events = inbox.events;
    this.clientEvents = inbox.clientEvents;
    this.connections = tap.connections;
    this.frames = tap.frames;
    this.sentFrames = tap.sentFrames;
    this.pollAnswers = tap.pollAnswers;
    this.publishes = tap.publishes;
    this.closes = tap.closes;
    this.handlerErrors = tap.handlerErrors;
    this.restCalls = restCalls;
  }

  /** The messages received so far; binary (v4 protobuf) frames are read through `decodeBinary`. */
  wireMessages(decodeBinary?: (data: Buffer) => DecodedWireMessage[]): WireMessage[] {
    return wireMessages(this.frames, decodeBinary);
  }

  /** Waits until at least `n` events reached the subscriber; returns them all. */
  async waitForEvents(n: number, timeoutMs = WAIT_MS): Promise<ReceivedEvent[]> {
    await waitUntil(this.session, () => this.events.length >= n, timeoutMs, `${n} events`);
    return this.events;
  }

  /** Waits until at least `n` events reached the `type: 'client'` subscriber; returns them all. */
  async waitForClientEvents(n: number, timeoutMs = WAIT_MS): Promise<ReceivedEvent[]> {
    await waitUntil(this.session, () => this.clientEvents.length >= n, timeoutMs, `${n} client events`);
    return this.clientEvents;
  }

  /** Waits until one of the client's WebSockets was closed with `code`; returns that close. */
  async waitForClose(code: number, timeoutMs = WAIT_MS): Promise<CloseRecord> {
    await waitUntil(this.session, () => this.closes.some((c) => c.code === code), timeoutMs, `a close with code ${code}`);
    return this.closes.find((c) => c.code === code)!;
  }

  /** Waits until the client made at least `n` connections (WebSocket opens or polls). */
  async waitForConnections(n: number, timeoutMs = WAIT_MS): Promise<ConnectionRecord[]> {
    await waitUntil(this.session, () => this.connections.length >= n, timeoutMs, `${n} connections`);
    return this.connections;
  }

  isConnected(): boolean {
    return this.client.isConnected();
  }

  /**
   * Drops the live connection as a network failure would (WebSocket terminated
   * without a close frame: 1006; held long poll: status 0) and resolves once the
   * client noticed. With `holdReconnect`, the connection the client opens by itself
   * ~0.5 s later waits until `releaseReconnect()`.
   */
  async disconnect({ holdReconnect = false, timeoutMs = WAIT_MS } = {}): Promise<void> {
    const { tap, transport } = this.session;
    if (holdReconnect) tap.holdConnections();
    if (tap.cut(transport) === 0) throw new Error(`no live ${transport} connection to drop: ${JSON.stringify(describeSession(this.session))}`);
    await waitUntil(this.session, () => !this.client.isConnected(), timeoutMs, 'the client to notice the drop');
  }

  releaseReconnect(): void {
    this.session.tap.releaseConnections();
  }

  /** The SDK's own debug dump plus what was recorded, for failure messages. */
  debugInfo(): Record<string, unknown> {
    const sdk = { ...(this.client.getDebugInfo() as Record<string, unknown>) };
    delete sdk['Watch tags']; // an iterator
    return { sdk, ...describeSession(this.session) };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await closeSession(this.session);
  }
}
