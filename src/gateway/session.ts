import type { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import type { AdmissionTicket } from './admission.ts';
import type { Delivery, FrameFormat } from './delivery.ts';

export type Transport = 'ws' | 'longpoll';

/** What every session is made of, whatever its transport. */
export interface SessionOptions {
  format: FrameFormat;
  /** Channel keys (`priv.<id>`, `pub.<id>`) the connection listens to. */
  keys: readonly string[];
  /** First public id of the connection: its identity as a sender. */
  publicId: string | undefined;
  /** The user channel limits.maxConnPerChannel counts this connection against, if any. */
  limitedKey: string | undefined;
  /** Bytes that may wait for this connection before it is closed as too slow. */
  maxOutboxBytes: number;
  /** Stream sequence of the mid the client resumes from, when it brought one of this epoch. */
  resumeFrom?: number | undefined;
  /** The client's address as the limits per address count it (IPv6 by /64). */
  address?: string;
  /** A protocol 5 token's portal (host id) and user, for calls naming user ids. */
  hostId?: string | undefined;
  userId?: string | undefined;
  log: Logger;
  telemetry: Telemetry;
}

/** How many recent multi-receiver publish ids a connection remembers to drop sibling copies. */
const RECENT_PUBLISHES = 16;

let nextSessionId = 1;

/**
 * One client connection, whatever its transport. The hub calls `deliver` for every
 * message on any of the connection's channels and never waits for it; the session
 * decides synchronously what to do with it (drop a duplicate, buffer it while the
 * replay runs, or hand it to the transport).
 *
 * Replay hand-over: a connection with a `mid` is attached to the hub first
 * (`syncing`), so live messages are buffered while the stream is read. `finishSync`
 * then sends the replayed and the buffered messages merged in mid order, without
 * duplicates, before anything live.
 */
export abstract class Session {
  readonly id = nextSessionId++;
  readonly openedAt = Date.now();
  protected state: 'syncing' | 'live' | 'closed' = 'syncing';
  private syncBuffer: Delivery[] = [];
  /** Messages at or below this sequence were sent already or are not this client's: never sent. */
  private floorSeq: number;
  /** The same per channel, above floorSeq: what a replay read of each channel when it handed over before live delivery had caught up. */
  private channelFloors: Map<string, number> | undefined;
  /** Highest sequence handed to the transport: with ordered delivery, everything below it on its channels went first. */
  private sentUpTo = 0;
  private syncBufferBytes = 0;
  private recentPubIds: string[] | undefined;
  private readonly parentLog: Logger;
  private childLog: Logger | undefined;
  protected readonly telemetry: Telemetry;
  readonly format: FrameFormat;
  readonly keys: readonly string[];
  readonly publicId: string | undefined;
  readonly limitedKey: string | undefined;
  /** Sequence of the client's mid when it resumes in this epoch: its replay starts after it. */
  readonly resumeFrom: number | undefined;
  readonly address: string;
  readonly hostId: string | undefined;
  readonly userId: string | undefined;
  /** Its place in admission's counts, from admission until the gateway forgets it. */
  ticket: AdmissionTicket | undefined;
  protected readonly maxOutboxBytes: number;
  /** Called once when the session ends, whoever ends it. */
  onClosed: ((session: Session) => void) | undefined;

  protected constructor(
    readonly transport: Transport,
    opts: SessionOptions,
  ) {
    this.format = opts.format;
    this.keys = opts.keys;
    this.publicId = opts.publicId;
    this.limitedKey = opts.limitedKey;
    this.maxOutboxBytes = opts.maxOutboxBytes;
    this.resumeFrom = opts.resumeFrom;
    this.address = opts.address ?? '';
    this.hostId = opts.hostId;
    this.userId = opts.userId;
    this.floorSeq = opts.resumeFrom ?? 0;
    this.telemetry = opts.telemetry;
    this.parentLog = opts.log;
  }

  /** The connection's logger, made on first use: most connections never log, and 20,000 child loggers cost memory. */
  protected get log(): Logger {
    return (this.childLog ??= this.parentLog.child({ connId: this.id, transport: this.transport, format: this.format }));
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  get isSyncing(): boolean {
    return this.state === 'syncing';
  }

  /** Fast lane from the hub: never throws, never waits. */
  deliver(d: Delivery): void {
    if (this.state === 'closed' || d.seq <= this.floorSeq || (this.channelFloors !== undefined && d.seq <= (this.channelFloors.get(d.msg.key) ?? 0)) || this.isDuplicate(d)) return;
    if (this.state === 'syncing') {
      this.syncBuffer.push(d);
      this.syncBufferBytes += d.msg.body.length;
      if (this.syncBufferBytes > this.maxOutboxBytes) this.closeSlow(this.syncBufferBytes);
      return;
    }
    if (d.seq > this.sentUpTo) this.sentUpTo = d.seq;
    this.emit([d], 'live');
  }

  /**
   * Ends the replay: sends replayed + buffered messages in mid order, then goes live.
   * `horizon`: the replay considered every message of the connection's channels up to
   * this sequence and live delivery has handed out everything up to it, so a later
   * live copy of anything at or below it is a duplicate. When the replay stopped at a
   * page boundary (`complete` false), the buffered live messages lie beyond what was
   * read and would leave a gap: they are dropped, and the client fetches them with
   * its next mid. `readTo`: each channel's own read point, where live delivery had not
   * reached the horizon yet; a later live copy of what it covers is not sent again.
   */
  finishSync(replayed: readonly Delivery[], complete = true, horizon = 0, readTo?: ReadonlyArray<readonly [string, number]>): void {
    if (this.state !== 'syncing') return;
    this.floorSeq = Math.max(this.floorSeq, horizon);
    if (readTo !== undefined) {
      for (const [key, seq] of readTo) if (seq > this.floorSeq) (this.channelFloors ??= new Map()).set(key, seq);
    }
    const buffered = complete ? this.syncBuffer : [];
    this.syncBuffer = [];
    this.syncBufferBytes = 0;
    this.state = 'live';
    let batch: Delivery[];
    if (buffered.length === 0) {
      batch = [...replayed];
      for (const d of replayed) this.rememberPublish(d);
    } else {
      const seen = new Set<number>();
      batch = [];
      for (const d of replayed) {
        seen.add(d.seq);
        this.rememberPublish(d);
        batch.push(d);
      }
      for (const d of buffered) {
        if (!seen.has(d.seq) && !this.isDuplicateOf(d, replayed)) batch.push(d);
      }
      batch.sort((a, b) => a.seq - b.seq);
    }
    if (batch.length > 0) {
      this.sentUpTo = Math.max(this.sentUpTo, batch.at(-1)!.seq);
      this.emit(batch, 'replay');
    }
    this.onLive();
  }

  /** Runs once the session has gone live (after its replay, if any). */
  protected onLive(): void {}

  /** Ends the connection with a close code (its reason from the catalogue unless given); idempotent. */
  abstract close(code: CloseCode, reason?: string): void;

  /** Transport-specific write of one or more messages (already deduplicated). */
  protected abstract emit(list: readonly Delivery[], grouping: 'live' | 'replay'): void;

  protected abstract closeSlow(queuedBytes: number): void;

  /** Marks the session closed and notifies the owner once. */
  protected markClosed(): boolean {
    if (this.state === 'closed') return false;
    this.state = 'closed';
    this.syncBuffer = [];
    this.onClosed?.(this);
    return true;
  }

  /**
   * A publish to several receivers is stored as one copy per receiver. A connection
   * holding more than one of them keeps the first copy it sees (the lowest sequence)
   * and drops the others: a copy whose first copy was on one of its channels and at
   * or below what it already sent or resumed from (delivery is in order, so it had
   * that one), or one of the recent publishes it remembers.
   */
  private isDuplicate(d: Delivery): boolean {
    const pubId = d.msg.pubId;
    if (pubId === undefined || this.keys.length < 2) return false;
    const { firstSeq, firstKey } = d.msg;
    if (firstSeq !== undefined && firstKey !== undefined && firstSeq <= Math.max(this.floorSeq, this.sentUpTo) && this.keys.includes(firstKey)) {
      return true;
    }
    const recent = (this.recentPubIds ??= []);
    if (recent.includes(pubId)) return true;
    if (recent.length >= RECENT_PUBLISHES) recent.shift();
    recent.push(pubId);
    return false;
  }

  private rememberPublish(d: Delivery): void {
    const pubId = d.msg.pubId;
    if (pubId === undefined || this.keys.length < 2) return;
    const recent = (this.recentPubIds ??= []);
    if (recent.includes(pubId)) return;
    if (recent.length >= RECENT_PUBLISHES) recent.shift();
    recent.push(pubId);
  }

  private isDuplicateOf(d: Delivery, list: readonly Delivery[]): boolean {
    const pubId = d.msg.pubId;
    return pubId !== undefined && list.some((r) => r.msg.pubId === pubId);
  }
}
