import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { CloseCode } from '../../src/errors/close-codes.ts';
import { Delivery } from '../../src/gateway/delivery.ts';
import { LongPollSession, type LongPollSessionOptions } from '../../src/gateway/long-poll-session.ts';
import type { Session } from '../../src/gateway/session.ts';
import { SessionSocket, WsSession, type WsSessionOptions } from '../../src/gateway/ws-session.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';
import { LogSink } from './log-sink.ts';
import { parseTextFrames } from './text-frames.ts';
import { within } from './wait.ts';

export const EPOCH = 1_795_315_940;

/** A stored message as the stream would hand it over (body `{"n":<seq>}`). */
export function storedMessage(seq: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    seq,
    key: 'priv.00000000000000000000000000000001',
    body: Buffer.from(JSON.stringify({ n: seq })),
    expirySec: 3600,
    timeMs: Date.now(),
    senderId: undefined,
    pubId: undefined,
    firstSeq: undefined,
    prevSeq: undefined,
    ...extra,
  };
}

export function delivery(seq: number, extra: Partial<StoredMessage> = {}): Delivery {
  return new Delivery(storedMessage(seq, extra), EPOCH, Date.now());
}

/** How a connection ended, as the client saw it. */
export type ClientEnd =
  | { kind: 'closed'; code: number; reason: string }
  | { kind: 'answered'; status: number; lastMessageId: string | null; body: string };

/** What the far end of a session received: the sequences of its messages, and how it ended. */
export interface ClientView {
  /** Sequences received so far, in order. */
  seqs(): number[];
  /** Resolves once at least `count` messages arrived. */
  waitSeqs(count: number, timeoutMs?: number): Promise<number[]>;
  readonly ended: Promise<ClientEnd>;
}

/** A WebSocket client's view, frame by frame. */
export interface WsClientView extends ClientView {
  /** Every frame received so far, as it came. */
  frames(): Array<{ data: Buffer; binary: boolean }>;
  /** Resolves once at least `count` frames arrived. */
  waitFrames(count: number, timeoutMs?: number): Promise<Array<{ data: Buffer; binary: boolean }>>;
  /** Stops reading the socket (the server's writes back up in the kernel), and starts again. */
  pause(): void;
  resume(): void;
}

export interface SessionPair<S extends Session, C extends ClientView = ClientView> {
  readonly session: S;
  readonly client: C;
}

type Common = Partial<Omit<WsSessionOptions & LongPollSessionOptions, 'log' | 'telemetry'>> & {
  /** Closes the WebSocket session with this code before the client's handshake binds its socket. */
  closeBeforeBind?: CloseCode;
};

/**
 * Sessions bound to real sockets: an HTTP server on a free loopback port whose
 * WebSocket upgrades bind a WsSession and whose requests answer through a
 * LongPollSession, each built with the options a test gives, and a client on the
 * other end that records what arrives. The gateway is not involved: tests drive the
 * sessions as the hub and the replay scheduler do.
 */
export class SessionHarness {
  readonly logs = new LogSink();
  readonly telemetry = new Metrics({ nats: () => ({ connected: true, reconnects: 0 }), publishers: () => undefined, gateway: () => undefined, stream: () => undefined }, {});
  private readonly log = createRootLogger({ level: 'debug', processUniqueId: 'harness', version: 'test' }, this.logs);
  private readonly wss = new WebSocketServer({ noServer: true, WebSocket: SessionSocket, perMessageDeflate: false, clientTracking: false });
  private readonly pendingWs = new Map<string, WsSession>();
  private readonly pendingPolls = new Map<string, (res: ServerResponse) => void>();
  private readonly clients = new Set<WebSocket>();
  private nextId = 1;

  private constructor(private readonly server: Server) {}

  static async start(): Promise<SessionHarness> {
    const server = createServer();
    const harness = new SessionHarness(server);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => harness.pendingPolls.get(idOf(req))?.(res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const session = harness.pendingWs.get(idOf(req));
      if (session === undefined) return socket.destroy();
      harness.wss.handleUpgrade(req, socket, head, (ws) => session.bind(ws as SessionSocket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return harness;
  }

  private get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private options(opts: Common) {
    return {
      format: 'text' as const,
      keys: ['priv.00000000000000000000000000000001'],
      publicId: undefined,
      limitedKey: undefined,
      maxOutboxBytes: 1 << 20,
      coalesceWindowMs: 0,
      coalesceBounds: { maxBytes: 65_536, maxMessages: 256 },
      maxRequestsInFlight: 8,
      holdMs: 5_000,
      requestMid: undefined,
      newestMid: async () => '',
      ...opts,
      log: this.log,
      telemetry: this.telemetry,
    };
  }

  /** A WebSocket session, bound once the client's handshake is done. */
  async ws(opts: Common = {}): Promise<SessionPair<WsSession, WsClientView>> {
    const id = String(this.nextId++);
    const session = new WsSession(this.options(opts));
    if (opts.closeBeforeBind !== undefined) session.close(opts.closeBeforeBind);
    this.pendingWs.set(id, session);
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/?id=${id}`, { maxPayload: 256 * 1024 * 1024 });
    this.clients.add(ws);
    ws.on('error', () => undefined);
    const frames: Array<{ data: Buffer; binary: boolean }> = [];
    const waiters = new Set<() => void>();
    ws.on('message', (data: Buffer, binary: boolean) => {
      frames.push({ data, binary });
      for (const w of waiters) w();
    });
    const ended = new Promise<ClientEnd>((resolve) => ws.once('close', (code, reason) => resolve({ kind: 'closed', code, reason: reason.toString() })));
    await within('the WebSocket handshake', new Promise((resolve) => ws.once('open', resolve)), 5_000);
    // The handshake is done for the client before the server's upgrade callback has run.
    await new Promise((resolve) => setImmediate(resolve));
    this.pendingWs.delete(id);
    const seqs = (): number[] => parseTextFrames(frames.map((f) => f.data.toString('utf8')).join('')).map((m) => m.id);
    const frameCount = (): number[] => frames.map((_, i) => i);
    return {
      session,
      client: {
        seqs,
        ended,
        waitSeqs: (count, timeoutMs) => waitFor(seqs, count, waiters, timeoutMs),
        frames: () => frames.slice(),
        waitFrames: async (count, timeoutMs) => {
          await waitFor(frameCount, count, waiters, timeoutMs);
          return frames.slice();
        },
        pause: () => ws.pause(),
        resume: () => ws.resume(),
      },
    };
  }

  /** A held long poll: the session answers the client's request. */
  async longPoll(opts: Common = {}): Promise<SessionPair<LongPollSession>> {
    const id = String(this.nextId++);
    const sessionReady = new Promise<LongPollSession>((resolve) =>
      this.pendingPolls.set(id, (res) => resolve(new LongPollSession(res, this.options(opts)))),
    );
    const answer = fetch(`http://127.0.0.1:${this.port}/?id=${id}`).then(async (res) => ({
      status: res.status,
      lastMessageId: res.headers.get('last-message-id'),
      body: await res.text(),
    }));
    answer.catch(() => undefined);
    const session = await within('the long poll to arrive', sessionReady, 5_000);
    this.pendingPolls.delete(id);
    let body = '';
    const waiters = new Set<() => void>();
    const ended: Promise<ClientEnd> = answer.then((a) => {
      body = a.body;
      for (const w of waiters) w();
      return { kind: 'answered', ...a };
    });
    const seqs = (): number[] => parseTextFrames(body).map((m) => m.id);
    return { session, client: { seqs, ended, waitSeqs: (count, timeoutMs) => waitFor(seqs, count, waiters, timeoutMs) } };
  }

  async close(): Promise<void> {
    for (const ws of this.clients) ws.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function idOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
}

async function waitFor(seqs: () => number[], count: number, waiters: Set<() => void>, timeoutMs = 3_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (seqs().length < count) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${count} messages or frames, got [${seqs().join(', ')}]`);
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        waiters.delete(wake);
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(wake, left);
      waiters.add(wake);
    });
  }
  return seqs();
}
