import type { ServerResponse } from 'node:http';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import { Actor } from '../actors/actor.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { GatewayStats, Refusal, Telemetry } from '../telemetry/telemetry.ts';
import type { NatsLink } from '../nats/connection.ts';
import { channelKey } from '../nats/subjects.ts';
import type { Presence } from '../presence/presence.ts';
import type { ProtobufRequests } from '../publisher/protobuf-requests.ts';
import { delay } from '../util/deferred.ts';
import { TokenBucket } from '../util/token-bucket.ts';
import { firstPublicId, receiversOf, type ChannelToken } from '../wire/channel-id.ts';
import { errorText, JetpullClose, PushError } from '../wire/error-codes.ts';
import { formatMid, parseMid } from '../wire/mid.ts';
import type { FrameFormat } from './delivery.ts';
import { Hub } from './hub.ts';
import { LongPollSession } from './long-poll-session.ts';
import { ReplayReader } from './replay-reader.ts';
import { ReplayScheduler } from './replay-scheduler.ts';
import type { Session } from './session.ts';
import { StreamScanner } from './stream-scanner.ts';
import { WsSession } from './ws-session.ts';

type GatewayMsg =
  | { type: 'open'; session: Session; fromSeq: number | undefined; ready: (refusal: Refusal | undefined) => void }
  | { type: 'closed'; session: Session }
  | { type: 'ping-tick' }
  | { type: 'sweep-tick' }
  | { type: 'catch-up'; reason: string };

export interface SubscribeRequest {
  tokens: readonly ChannelToken[];
  format: FrameFormat;
  /** The raw `mid` query value; anything but 26 digits is ignored. */
  mid: string | undefined;
}

export interface GatewayDeps {
  link: NatsLink;
  js: JetStreamClient;
  jsm: JetStreamManager;
  streamName: string;
  presence: Presence;
  /** Handles protobuf requests clients send on binary WebSockets. */
  clientRequests: ProtobufRequests;
  telemetry: Telemetry;
}

const SWEEP_INTERVAL_MS = 5_000;
const MAILBOX_CAPACITY = 10_000;

/**
 * Terminates client connections. Its mailbox takes connection lifecycle commands
 * (open, closed, timer ticks) one at a time, so the registry of sessions and the
 * hub's subscriptions have one owner. Live messages take the fast lane: NATS
 * callback → hub → session.deliver, synchronously, with no mailbox hop.
 *
 * Opening a connection: subscribe its channels (one server round trip per
 * event-loop turn, shared), and, when it brought a `mid`, read what it missed while
 * live messages are buffered, then hand both over merged (see Session).
 */
export class GatewayActor extends Actor<GatewayMsg> {
  readonly hub: Hub;
  private readonly reader: ReplayReader;
  private readonly replays: ReplayScheduler;
  private readonly sessions = new Set<Session>();
  private readonly wsSessions = new Set<WsSession>();
  private timers: NodeJS.Timeout[] = [];
  private unlisten: Array<() => void> = [];
  private advisories: Subscription | undefined;
  private readonly admissions: TokenBucket;
  /** Connections with a mid admitted whose replay is not queued yet. */
  private replaysAdmitted = 0;
  private draining = false;

  constructor(
    log: Logger,
    private readonly epochSec: () => number,
    private readonly cfg: Config['gateway'],
    private readonly limits: Config['limits'],
    private readonly deps: GatewayDeps,
  ) {
    super(log, MAILBOX_CAPACITY);
    const scanner = new StreamScanner(deps.js, deps.jsm, deps.streamName);
    const streamEnd = async (): Promise<number> => (await deps.jsm.streams.info(deps.streamName)).state.last_seq;
    this.hub = new Hub(deps.link.nc, scanner, streamEnd, epochSec, log.child({ component: 'hub' }), Math.max(cfg.longPollTimeoutMs, 10_000));
    this.reader = new ReplayReader(deps.jsm, deps.streamName);
    this.replays = new ReplayScheduler(
      this.hub,
      this.reader,
      scanner,
      streamEnd,
      epochSec,
      { maxConcurrent: cfg.maxConcurrentReplays, pageMessages: cfg.replayPageMessages },
      deps.telemetry,
      log.child({ component: 'replay' }),
    );
    this.admissions = new TokenBucket(cfg.maxNewConnectionsPerSec, cfg.maxNewConnectionsPerSec);
  }

  // Handlers every session shares (one function, not a closure per connection).
  private readonly touchPresence = (s: Session): void => this.deps.presence.touch(s.keys);
  private readonly clientFrame = (s: WsSession, data: Buffer, isBinary: boolean): Promise<void> => this.onClientFrame(s, data, isBinary);
  private readonly sessionClosed = (s: Session): void => {
    // Stopping: the hub is closed with everything else.
    if (!this.tell({ type: 'closed', session: s })) this.forget(s);
  };

  /** False once draining or stopping: readiness fails and new connections get 503. */
  get accepting(): boolean {
    return !this.draining && this.state === 'running';
  }

  /** A WebSocket session, not yet bound to a socket. */
  createWsSession(req: SubscribeRequest, log: Logger): WsSession {
    const session = new WsSession({
      format: req.format,
      keys: receiversOf(req.tokens).map(channelKey),
      publicId: firstPublicId(req.tokens),
      limitedKey: limitedKeyOf(req.tokens),
      coalesceWindowMs: this.cfg.coalesceWindowMs,
      maxRequestsInFlight: this.cfg.maxClientRequestsInFlight,
      maxOutboxBytes: this.cfg.maxOutboxBytes,
      log,
      telemetry: this.deps.telemetry,
    });
    session.onPong = this.touchPresence;
    session.onClientFrame = this.clientFrame;
    this.wsSessions.add(session);
    return session;
  }

  createLongPollSession(req: SubscribeRequest, res: ServerResponse, log: Logger): LongPollSession {
    const keys = receiversOf(req.tokens).map(channelKey);
    const requestMid = parseMid(req.mid) === undefined ? undefined : req.mid;
    return new LongPollSession(res, {
      format: req.format,
      keys,
      publicId: firstPublicId(req.tokens),
      limitedKey: limitedKeyOf(req.tokens),
      maxOutboxBytes: this.cfg.maxOutboxBytes,
      holdMs: this.cfg.longPollTimeoutMs,
      requestMid,
      newestMid: async () => {
        const seq = await this.reader.newestSeq(keys);
        return seq === 0 ? '' : formatMid(this.epochSec(), seq);
      },
      log,
      telemetry: this.deps.telemetry,
    });
  }

  /**
   * Registers the session and subscribes its channels. Resolves undefined once the
   * subscriptions are active on the server (the replay, if any, goes on after), or
   * the reason the gateway cannot take it now (answered 503).
   *
   * Admission control: new connections are rate-limited (maxNewConnectionsPerSec)
   * and replays queue up to maxQueuedReplays, so 10,000 clients returning at once
   * cannot starve live delivery or NATS.
   */
  open(session: Session, mid: string | undefined): Promise<Refusal | undefined> {
    const fromSeq = this.replayStart(mid);
    const refusal = this.admit(fromSeq !== undefined);
    if (refusal !== undefined) {
      this.refuse(session, refusal);
      return Promise.resolve(refusal);
    }
    // Counted against maxQueuedReplays from admission until the replay is queued.
    if (fromSeq !== undefined) this.replaysAdmitted++;
    return new Promise((ready) => {
      if (!this.tell({ type: 'open', session, fromSeq, ready })) {
        if (fromSeq !== undefined) this.replaysAdmitted--;
        this.refuse(session, this.state === 'running' ? 'mailbox' : 'draining');
        ready(this.state === 'running' ? 'mailbox' : 'draining');
      }
    });
  }

  /**
   * Graceful drain: stop taking connections, then close the open ones (1012 for
   * WebSockets, 304 with their resume point for long polls) in batches spread over
   * `drainWindowMs` in random order, so clients come back on other gateways a few
   * at a time and resume by mid. Resolves when all are closed.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const all = [...this.sessions];
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    const tickMs = 100;
    const ticks = Math.max(1, Math.floor(this.cfg.drainWindowMs / tickMs));
    const perTick = Math.ceil(all.length / ticks);
    this.log.info({ count: all.length, windowMs: this.cfg.drainWindowMs, batchSize: perTick }, 'draining');
    for (let i = 0; i < all.length; i += perTick) {
      for (const s of all.slice(i, i + perTick)) s.close(JetpullClose.ServiceRestart, 'server restarting');
      if (i + perTick < all.length) await delay(tickMs);
    }
    this.log.info({ count: all.length }, 'drained');
  }

  stats(): GatewayStats {
    const byKind: Record<string, number> = { 'ws/text': 0, 'ws/binary': 0, 'longpoll/text': 0, 'longpoll/binary': 0 };
    const privateChannels = new Set<string>();
    for (const s of this.sessions) {
      const k = `${s.transport}/${s.format}`;
      byKind[k] = (byKind[k] ?? 0) + 1;
      for (const key of s.keys) if (key.startsWith('priv.')) privateChannels.add(key);
    }
    const pollings = (byKind['longpoll/text'] ?? 0) + (byKind['longpoll/binary'] ?? 0);
    const hub = this.hub.stats();
    return {
      websockets: this.sessions.size - pollings,
      pollings,
      connectionsByKind: byKind,
      privateChannels: privateChannels.size,
      channelsSubscribed: hub.channels,
      replaysRunning: this.replays.inUse,
      replaysWaiting: this.replays.waiting,
      replayReads: this.reader.reads,
      messagesIn: hub.messagesIn,
      deliveries: hub.deliveries,
      gapsFilled: hub.gapsFilled,
      catchUps: hub.catchUps,
    };
  }

  protected override async onStart(): Promise<void> {
    const { link, jsm, streamName } = this.deps;
    this.hub.startAt((await jsm.streams.info(streamName)).state.last_seq);
    const ping = setInterval(() => this.tell({ type: 'ping-tick' }), this.cfg.pingIntervalMs);
    const sweep = setInterval(() => this.tell({ type: 'sweep-tick' }), SWEEP_INTERVAL_MS);
    this.timers = [ping, sweep];
    // Republished messages that arrive while disconnected, or that a failing stream
    // leader never sent, are lost to live delivery: read them from the stream.
    this.unlisten = [
      link.onDisconnect(() => this.hub.noteDisconnect()),
      link.onReconnect(() => this.tell({ type: 'catch-up', reason: 'nats reconnected' })),
    ];
    this.advisories = link.nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${streamName}`, {
      callback: () => {
        this.tell({ type: 'catch-up', reason: 'stream leader elected' });
      },
    });
  }

  protected override async onStop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unlisten) u();
    this.advisories?.unsubscribe();
    for (const s of [...this.sessions]) s.close(JetpullClose.ServiceRestart, 'server restarting');
    this.hub.close();
  }

  protected handle(msg: GatewayMsg): void {
    switch (msg.type) {
      case 'open':
        this.onOpen(msg.session, msg.fromSeq, msg.ready);
        return;
      case 'closed':
        this.hub.detach(msg.session);
        this.forget(msg.session);
        return;
      case 'ping-tick':
        for (const s of this.wsSessions) s.ping();
        return;
      case 'sweep-tick':
        this.hub.sweep();
        this.deps.presence.sweep();
        this.deps.jsm.streams.info(this.deps.streamName).then(
          (info) => this.hub.notePosition(info.state.last_seq),
          () => this.hub.noteDisconnect(),
        );
        return;
      case 'catch-up':
        void this.hub.catchUp(msg.reason);
        return;
      default: {
        const never: never = msg;
        throw new TypeError(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  private admit(withReplay: boolean): Refusal | undefined {
    if (!this.accepting) return 'draining';
    if (withReplay && this.replays.waiting + this.replaysAdmitted >= this.cfg.maxQueuedReplays) return 'replay-queue';
    if (!this.admissions.take()) return 'connection-rate';
    return undefined;
  }

  private refuse(session: Session, reason: Refusal): void {
    this.deps.telemetry.admissionRefused(reason);
    this.log.info({ reason, transport: session.transport }, 'connection refused');
    this.forget(session);
  }

  private onOpen(session: Session, fromSeq: number | undefined, ready: (refusal: Refusal | undefined) => void): void {
    if (session.isClosed) {
      if (fromSeq !== undefined) this.replaysAdmitted--;
      this.forget(session);
      ready(undefined);
      return;
    }
    this.sessions.add(session);
    session.onClosed = this.sessionClosed;
    this.enforceConnectionLimit(session);
    this.deps.presence.touch(session.keys);
    this.hub
      .attach(session)
      .then(() => {
        ready(undefined);
        if (fromSeq === undefined) {
          session.finishSync([]);
          return;
        }
        this.replaysAdmitted--;
        this.replays.replay(session, fromSeq);
      });
  }

  /**
   * limits.maxConnPerChannel, as Push server 2.0 applies it: per user channel (a
   * private id that came with a public id), on this gateway. The oldest connection
   * is closed with 4029 (a long poll answers 429).
   */
  private enforceConnectionLimit(session: Session): void {
    const key = session.limitedKey;
    if (key === undefined) return;
    const holders = [...(this.hub.sessionsOf(key) ?? [])].filter((s) => s.limitedKey === key && !s.isClosed);
    let excess = holders.length + 1 - this.limits.maxConnPerChannel;
    if (excess <= 0) return;
    holders.sort((a, b) => a.openedAt - b.openedAt || a.id - b.id);
    for (const oldest of holders) {
      if (excess-- <= 0) break;
      this.log.info({ connId: oldest.id, closeCode: PushError.TooManyConnections }, 'connection limit reached, closing the oldest');
      oldest.close(PushError.TooManyConnections, errorText(PushError.TooManyConnections));
    }
  }

  /**
   * A frame from a binary-mode client (text mode ignores client frames in WsSession):
   * protobuf requests are handled; a text frame (4013) or a refused request closes the
   * socket with the request's code.
   */
  private async onClientFrame(session: WsSession, data: Buffer, isBinary: boolean): Promise<void> {
    if (session.isClosed) return;
    if (!isBinary) {
      session.close(PushError.WrongRequestData, errorText(PushError.WrongRequestData));
      return;
    }
    let outcome: Awaited<ReturnType<ProtobufRequests['handle']>>;
    try {
      outcome = await this.deps.clientRequests.handle(data, { trusted: false, publicId: session.publicId });
    } catch (err) {
      this.log.warn({ err, connId: session.id }, 'client request failed');
      session.close(1011, 'Internal error.');
      return;
    }
    if (outcome.ok) {
      if (outcome.reply !== undefined) session.sendNow(outcome.reply);
    } else if ('code' in outcome) {
      this.log.info({ connId: session.id, closeCode: outcome.code }, 'client request refused');
      session.close(outcome.code, errorText(outcome.code));
    } else {
      session.close(1013, 'Try again later.');
    }
  }

  /** Where a replay starts: the mid's sequence, 0 (all retained) for a mid of another epoch, none without a valid mid. */
  private replayStart(mid: string | undefined): number | undefined {
    const pos = parseMid(mid);
    if (pos === undefined) return undefined;
    return pos.epoch === this.epochSec() ? pos.seq : 0;
  }

  private forget(session: Session): void {
    this.sessions.delete(session);
    if (session instanceof WsSession) this.wsSessions.delete(session);
  }
}

/** The channel maxConnPerChannel applies to: the private id of the first token with a public id. */
function limitedKeyOf(tokens: readonly ChannelToken[]): string | undefined {
  const t = tokens.find((x) => x.publicId !== undefined);
  return t === undefined ? undefined : channelKey({ id: t.privateId, isPrivate: true });
}
