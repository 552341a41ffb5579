import type { ServerResponse } from 'node:http';
import { Actor } from '../actors/actor.ts';
import type { Config } from '../config/schema.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import type { NatsLink } from '../nats/connection.ts';
import type { LiveFeed } from '../nats/live-feed.ts';
import type { StreamReader } from '../nats/stream-reader.ts';
import type { StreamWatch } from '../nats/stream-watch.ts';
import type { Presence } from '../presence/presence.ts';
import type { GatewayStats, Refusal, Telemetry } from '../telemetry/telemetry.ts';
import { channelKey, firstPublicId, receiversOf, userChannelId, type ChannelToken } from '../wire/channel-id.ts';
import { formatMid, parseMid } from '../wire/mid.ts';
import { Admission, type AdmissionTicket } from './admission.ts';
import { answerClientFrame, answerRpcFrame, type ClientRequests, type RpcMethods } from './client-requests.ts';
import { enforceConnectionLimit } from './connection-limit.ts';
import type { FrameFormat } from './delivery.ts';
import { closeInBatches } from './drain.ts';
import { Hub } from './hub.ts';
import { LongPollSession } from './long-poll-session.ts';
import { MemoryWatermark } from './memory-watermark.ts';
import { OutboundBudget } from './outbound-budget.ts';
import type { FrameBounds } from './outbox.ts';
import { ReplayReader } from './replay-reader.ts';
import { RepollCredits } from './repoll-credits.ts';
import { ReplayScheduler } from './replay-scheduler.ts';
import type { Session } from './session.ts';
import { WsSession } from './ws-session.ts';

type GatewayMsg =
  | { type: 'open'; session: Session; fromSeq: number | undefined; ticket: AdmissionTicket; ready: (refusal: Refusal | undefined) => void }
  | { type: 'ping-tick' }
  | { type: 'text-ping-tick' }
  | { type: 'sweep-tick' };

export interface SubscribeRequest {
  tokens: readonly ChannelToken[];
  format: FrameFormat;
  /** The raw `mid` query value; anything but 26 digits is ignored. */
  mid: string | undefined;
  /** The client's address as the limits per address count it (http/client-address.ts: IPv6 by /64). */
  address: string;
  /** A protocol 5 token's portal (host id): its user ids name channels (userChannelId). */
  hostId?: string | undefined;
  /** A protocol 5 token's user: limits.maxConnPerChannel counts its user channel. */
  userId?: string | undefined;
}

export interface GatewayDeps {
  link: NatsLink;
  feed: LiveFeed;
  reader: StreamReader;
  /** The stream's position (catch-up starting point) and re-creation (new epoch). */
  watch: Pick<StreamWatch, 'onPosition' | 'onRecreated' | 'check'>;
  presence: Presence;
  /** Answers protobuf requests clients send on binary WebSockets. */
  clientRequests: ClientRequests;
  /** Answers the method calls of protocol 5 (JSON-RPC) clients. */
  rpcMethods: RpcMethods;
  /** Told when a connection ends (protocol 5 status watches end with it). */
  onSessionClosed?: (session: Session) => void;
  telemetry: Telemetry;
  /** gateway.memoryWatermarkBytes with its default worked out (config/derived.ts). */
  memoryWatermarkBytes: number;
}

const SWEEP_INTERVAL_MS = 5_000;
/** Parts of gateway.pingIntervalMs over which a ping round is spread. */
const PING_SLICES = 20;
const MAILBOX_CAPACITY = 10_000;

/**
 * Terminates client connections: the registry of sessions and their delivery. Its
 * mailbox takes connection lifecycle commands (open, closed, timer ticks) one at a
 * time, so the registry and the hub's subscriptions have one owner. Live messages
 * take the fast lane: NATS callback → hub → session.deliver, synchronously, with no
 * mailbox hop.
 *
 * Opening a connection: admission, then subscribe its channels (one server round trip
 * per event-loop turn, shared), and, when it brought a `mid`, read what it missed
 * while live messages are buffered, then hand both over merged (see Session).
 */
export class GatewayActor extends Actor<GatewayMsg> {
  readonly hub: Hub;
  private readonly reader: ReplayReader;
  private readonly replays: ReplayScheduler;
  private readonly admission: Admission;
  private readonly repollCredits: RepollCredits;
  /** One object for every WebSocket session. */
  private readonly coalesceBounds: FrameBounds;
  /** gateway.memoryWatermarkBytes: readiness and admission follow it. */
  readonly memory: MemoryWatermark;
  private readonly outbound: OutboundBudget;
  private readonly sessions = new Set<Session>();
  private readonly wsSessions = new Set<WsSession>();
  /** The protocol 5 ones among them, which get text pings too. */
  private readonly rpcSessions = new Set<WsSession>();
  private timers: NodeJS.Timeout[] = [];
  private pingTicks = 0;
  private textPingTicks = 0;
  private unlisten: Array<() => void> = [];

  constructor(
    log: Logger,
    private readonly epochSec: () => number,
    private readonly cfg: Config['gateway'],
    private readonly limits: Config['limits'],
    private readonly deps: GatewayDeps,
  ) {
    super(log, MAILBOX_CAPACITY);
    this.hub = new Hub(deps.feed, deps.reader, epochSec, log.child({ component: 'hub' }), {
      lingerMs: Math.max(cfg.longPollTimeoutMs, 10_000),
      maxHeldMessages: cfg.maxCatchUpHeldMessages,
      recentBytes: cfg.recentMessagesBytes,
      recentPerChannel: cfg.recentMessagesPerChannel,
      // A stream re-created under the gateway shows first as sequences going back: look now, not at the next check.
      onSequenceBehind: () => void deps.watch.check(),
    });
    this.reader = new ReplayReader(deps.reader);
    this.replays = new ReplayScheduler(
      this.hub,
      this.reader,
      deps.reader,
      epochSec,
      {
        maxConcurrent: cfg.maxConcurrentReplays,
        pageMessages: cfg.replayPageMessages,
        pageBytes: Math.floor(cfg.maxOutboxBytes / 2),
        windowBytes: cfg.replayWindowBytes,
        liveMayLoseSilently: () => deps.link.clustered,
      },
      deps.telemetry,
      log.child({ component: 'replay' }),
    );
    this.memory = new MemoryWatermark(deps.memoryWatermarkBytes, log.child({ component: 'memory' }));
    this.outbound = new OutboundBudget(cfg.maxOutboundBytes, () => this.wsSessions, log.child({ component: 'outbound' }));
    this.admission = new Admission(cfg, () => this.replays.waiting, () => this.memory.isHigh);
    this.repollCredits = new RepollCredits(cfg.repollGraceMs);
    this.coalesceBounds = { maxBytes: cfg.coalesceMaxBytes, maxMessages: cfg.coalesceMaxMessages };
  }

  // Handlers every session shares (one function, not a closure per connection).
  private readonly touchPresence = (s: Session): void => this.deps.presence.touch(s.keys);
  private readonly clientFrame = (s: WsSession, data: Buffer, isBinary: boolean): Promise<void> =>
    s.isJsonRpc ? answerRpcFrame(s, data, this.deps.clientRequests, this.deps.rpcMethods, this.log) : answerClientFrame(s, data, isBinary, this.deps.clientRequests, this.log);
  // At once, not through the mailbox: a full mailbox must not leave a closed session subscribed.
  private readonly sessionClosed = (s: Session): void => {
    this.hub.detach(s);
    this.forget(s);
    this.deps.onSessionClosed?.(s);
  };

  /** False once draining or stopping: readiness fails and new connections get 503. */
  get accepting(): boolean {
    return !this.admission.isDraining && this.state === 'running';
  }

  /** A WebSocket session, not yet bound to a socket. */
  createWsSession(req: SubscribeRequest, log: Logger): WsSession {
    const session = new WsSession({
      format: req.format,
      keys: receiversOf(req.tokens).map(channelKey),
      publicId: firstPublicId(req.tokens),
      limitedKey: limitedKeyOf(req),
      resumeFrom: this.resumePoint(req.mid)?.seq,
      coalesceWindowMs: this.cfg.coalesceWindowMs,
      coalesceBounds: this.coalesceBounds,
      maxRequestsInFlight: this.cfg.maxClientRequestsInFlight,
      maxOutboxBytes: this.cfg.maxOutboxBytes,
      outbound: this.outbound,
      address: req.address,
      hostId: req.hostId,
      userId: req.userId,
      log,
      telemetry: this.deps.telemetry,
    });
    session.onPong = this.touchPresence;
    session.onClientFrame = this.clientFrame;
    this.wsSessions.add(session);
    if (session.isJsonRpc) this.rpcSessions.add(session);
    return session;
  }

  createLongPollSession(req: SubscribeRequest, res: ServerResponse, log: Logger): LongPollSession {
    const keys = receiversOf(req.tokens).map(channelKey);
    const requestMid = parseMid(req.mid) === undefined ? undefined : req.mid;
    return new LongPollSession(res, {
      format: req.format,
      keys,
      publicId: firstPublicId(req.tokens),
      limitedKey: limitedKeyOf(req),
      resumeFrom: this.resumePoint(req.mid)?.seq,
      maxOutboxBytes: this.cfg.maxOutboxBytes,
      holdMs: this.cfg.longPollTimeoutMs,
      requestMid,
      newestMid: async () => {
        const seq = await this.reader.newestSeq(keys);
        return seq === 0 ? '' : formatMid(this.epochSec(), seq);
      },
      onAnswered: (mid) => this.repollCredits.grant(keys, mid),
      address: req.address,
      log,
      telemetry: this.deps.telemetry,
    });
  }

  /**
   * Registers the session and subscribes its channels. Resolves undefined once the
   * subscriptions are active on the server (the replay, if any, goes on after), or
   * the reason the gateway cannot take it now (answered 503 or 429, errors/refusals.ts).
   */
  open(session: Session, mid: string | undefined): Promise<Refusal | undefined> {
    const fromSeq = this.replayStart(mid);
    const repoll = session.transport === 'longpoll' ? () => this.repollCredits.take(session.keys, parseMid(mid) === undefined ? '' : mid!) : undefined;
    const admitted = this.state === 'running' ? this.admission.admit(fromSeq !== undefined, session.address, repoll) : 'draining';
    if (typeof admitted === 'string') {
      this.refuse(session, admitted);
      return Promise.resolve(admitted);
    }
    session.ticket = admitted;
    return new Promise((ready) => {
      if (!this.tell({ type: 'open', session, fromSeq, ticket: admitted, ready })) {
        admitted.leave();
        const refusal = this.state === 'running' ? 'mailbox' : 'draining';
        this.refuse(session, refusal);
        ready(refusal);
      }
    });
  }

  /** Graceful drain: stop taking connections, then close the open ones in batches over `drainWindowMs`. */
  async drain(): Promise<void> {
    if (this.admission.isDraining) return;
    this.admission.startDraining();
    await closeInBatches([...this.sessions], this.cfg.drainWindowMs, this.log);
  }

  stats(): GatewayStats {
    const byKind: Record<string, number> = { 'ws/text': 0, 'ws/binary': 0, 'ws/jsonrpc': 0, 'longpoll/text': 0, 'longpoll/binary': 0, 'longpoll/jsonrpc': 0 };
    const privateChannels = new Set<string>();
    for (const s of this.sessions) {
      const k = `${s.transport}/${s.format}`;
      byKind[k] = (byKind[k] ?? 0) + 1;
      for (const key of s.keys) if (key.startsWith('priv.')) privateChannels.add(key);
    }
    const pollings = (byKind['longpoll/text'] ?? 0) + (byKind['longpoll/binary'] ?? 0) + (byKind['longpoll/jsonrpc'] ?? 0);
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
      replaysFromMemory: this.replays.fromMemory,
      recentMessagesBytes: this.hub.recentBytes,
      messagesIn: hub.messagesIn,
      deliveries: hub.deliveries,
      gapsFilled: hub.gapsFilled,
      catchUps: hub.catchUps,
      outboundBytes: this.outbound.queuedBytes,
      memoryHigh: this.memory.isHigh,
    };
  }

  protected override async onStart(): Promise<void> {
    const { link, feed, reader, watch } = this.deps;
    this.hub.startAt(await reader.end());
    // Each tick pings one slice of the connections, so every one is pinged once per
    // interval and their pongs (and presence writes) are spread over it.
    const ping = setInterval(() => this.tell({ type: 'ping-tick' }), Math.max(1, Math.floor(this.cfg.pingIntervalMs / PING_SLICES)));
    const textPing = setInterval(() => this.tell({ type: 'text-ping-tick' }), Math.max(1, Math.floor(this.cfg.jsonRpcPingIntervalMs / PING_SLICES)));
    const sweep = setInterval(() => this.tell({ type: 'sweep-tick' }), SWEEP_INTERVAL_MS);
    this.timers = [ping, textPing, sweep];
    this.memory.start();
    // Republished messages that arrive while disconnected, or that a failing stream
    // leader never sent, are lost to live delivery: hold it from the moment of the event
    // (so newer messages cannot overtake the lost ones) and read them from the stream.
    // Not through the mailbox: a full mailbox must not leave live delivery held.
    this.unlisten = [
      link.onDisconnect(() => this.hub.noteDisconnect()),
      link.onReconnect(() => void this.hub.catchUp('nats reconnected')),
      feed.onLeaderElected(() => {
        this.hub.suspectLoss('stream leader elected');
        void this.hub.catchUp('stream leader elected');
      }),
      watch.onPosition((pos) => (pos === undefined ? this.hub.forgetPosition() : this.hub.notePosition(pos.lastSeq))),
      watch.onRecreated((_epoch, lastSeq) => this.newEpoch(lastSeq)),
    ];
  }

  protected override async onStop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unlisten) u();
    this.memory.stop();
    for (const s of [...this.sessions]) s.close(CloseCode.ServiceRestart);
    this.hub.close();
  }

  protected handle(msg: GatewayMsg): void {
    switch (msg.type) {
      case 'open':
        this.onOpen(msg.session, msg.fromSeq, msg.ticket, msg.ready);
        return;
      case 'ping-tick': {
        const slice = this.pingTicks++ % PING_SLICES;
        for (const s of this.wsSessions) if (s.id % PING_SLICES === slice) s.ping();
        return;
      }
      case 'text-ping-tick': {
        const slice = this.textPingTicks++ % PING_SLICES;
        for (const s of this.rpcSessions) if (s.id % PING_SLICES === slice) s.textPing();
        return;
      }
      case 'sweep-tick':
        this.hub.sweep();
        this.deps.presence.sweep();
        return;
      default: {
        const never: never = msg;
        throw new TypeError(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The stream was re-created: sequences start again, so what the hub knew no longer
   * holds and every open connection's resume point is of the old epoch. Connections
   * are asked to come back (1012); with their old-epoch mid they replay the new stream
   * from its start.
   */
  private newEpoch(streamLastSeq: number): void {
    this.hub.resetEpoch(streamLastSeq);
    const open = [...this.sessions];
    this.log.warn({ count: open.length }, 'new stream epoch, connections asked to reconnect');
    for (const s of open) s.close(CloseCode.ServiceRestart);
  }

  private refuse(session: Session, reason: Refusal): void {
    this.deps.telemetry.admissionRefused(reason);
    this.log.info({ reason, transport: session.transport, address: session.address }, 'connection refused');
    this.forget(session);
  }

  private onOpen(session: Session, fromSeq: number | undefined, ticket: AdmissionTicket, ready: (refusal: Refusal | undefined) => void): void {
    if (session.isClosed) {
      ticket.release();
      this.forget(session);
      ready(undefined);
      return;
    }
    this.sessions.add(session);
    session.onClosed = this.sessionClosed;
    enforceConnectionLimit(session, session.limitedKey === undefined ? undefined : this.hub.sessionsOf(session.limitedKey), this.limits.maxConnPerChannel, this.log);
    this.deps.presence.touch(session.keys);
    this.hub
      .attach(session)
      .then(() => {
        ready(undefined);
        ticket.release();
        if (fromSeq === undefined) session.finishSync([]);
        else this.replays.replay(session, fromSeq);
      })
      .catch((err: unknown) => {
        ticket.release();
        this.log.error({ err, connId: session.id }, 'opening a connection failed');
        session.close(CloseCode.InternalError);
      });
  }

  /** Where a replay starts: the mid's sequence, 0 (all retained) for a mid of another epoch, none without a valid mid. */
  private replayStart(mid: string | undefined): number | undefined {
    const pos = parseMid(mid);
    if (pos === undefined) return undefined;
    return this.resumePoint(mid)?.seq ?? 0;
  }

  /** The client's mid when it is of this epoch. */
  private resumePoint(mid: string | undefined): { seq: number } | undefined {
    const pos = parseMid(mid);
    return pos !== undefined && pos.epoch === this.epochSec() ? { seq: pos.seq } : undefined;
  }

  private forget(session: Session): void {
    session.ticket?.leave();
    this.sessions.delete(session);
    if (session instanceof WsSession) {
      this.wsSessions.delete(session);
      this.rpcSessions.delete(session);
    }
  }
}

/** The channel maxConnPerChannel applies to: a token's user channel, or the private id of the first token with a public id. */
function limitedKeyOf(req: SubscribeRequest): string | undefined {
  if (req.hostId !== undefined && req.userId !== undefined) return channelKey({ id: userChannelId(req.hostId, req.userId), isPrivate: true });
  const t = req.tokens.find((x) => x.publicId !== undefined);
  return t === undefined ? undefined : channelKey({ id: t.privateId, isPrivate: true });
}
