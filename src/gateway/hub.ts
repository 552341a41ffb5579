import type { Logger } from '../log/logger.ts';
import type { LiveFeed, LiveSubscription } from '../nats/live-feed.ts';
import type { StoredMessage } from '../nats/stored-message.ts';
import type { StreamReader } from '../nats/stream-reader.ts';
import { delay } from '../util/deferred.ts';
import { Delivery } from './delivery.ts';
import { RecentMessages } from './recent-messages.ts';
import type { ChannelRead } from './replay-reader.ts';
import { SeenWaiters } from './seen-waiters.ts';
import type { Session } from './session.ts';
import { SubscribeBarrier } from './subscribe-barrier.ts';

interface ChannelEntry {
  readonly key: string;
  readonly sessions: Set<Session>;
  readonly sub: LiveSubscription;
  /** Sequence of the last message delivered on this channel (0: none yet). */
  lastSeq: number;
  /** When the last session left; the subscription lingers a little for the next poll. */
  idleSince: number;
  /**
   * Every message on this channel with a higher sequence reaches the hub (barring a
   * fault): the stream's end when the subscription was confirmed. Undefined until then.
   */
  completeFrom: number | undefined;
  /** Settles when the subscription's confirmation ended (see SubscribeBarrier); undefined before it was asked for. */
  confirmed: Promise<void> | undefined;
}

export interface HubStats {
  readonly channels: number;
  readonly messagesIn: number;
  readonly deliveries: number;
  readonly gapsFilled: number;
  readonly catchUps: number;
}

export interface HubOptions {
  /** Idle channels keep their subscription this long, so a long poll's next request finds it. */
  lingerMs: number;
  /**
   * A live message came with a sequence the channel is already past: a duplicate of
   * what a gap fill or catch-up delivered, or a stream re-created under us. Called at
   * most every half second; the gateway checks the stream at once.
   */
  onSequenceBehind?: () => void;
  /** Live messages held during a catch-up or a gap fill; beyond it they are read again from the stream. */
  maxHeldMessages: number;
  /** Bytes of recent messages kept for replays from memory (RecentMessages); 0: none. */
  recentBytes: number;
  /** Recent messages kept per channel. */
  recentPerChannel: number;
}

/** Channels checked for missed messages at once during a catch-up. */
const HOLE_CHECKS_AT_ONCE = 32;

/** Pause between catch-up attempts while the stream cannot be read. */
const CATCH_UP_RETRY_MS = 250;

/**
 * The gateway's registry of channel → local connections, and its only source of
 * live messages: one core NATS subscription to `push.live.<kind>.<id>` per channel
 * with at least one local connection (no JetStream consumer per connection or
 * channel: the stream republishes each stored message to that subject). Each message
 * is decoded once and handed, as one Delivery, to every connection on the channel;
 * the hub never waits for a connection.
 *
 * Live messages reach sessions in stream order, without gaps:
 * - every republished message carries its channel's previous sequence; when it is
 *   ahead of what the channel has delivered (or of the subscription's start), the gap
 *   is read from the stream and delivered first (`fillGap`);
 * - a NATS disconnect or a stream leader change may lose republished messages on
 *   any channel: from that moment (`suspectLoss`, called synchronously by the event)
 *   live messages are held, the stream is scanned from the last sequence the hub had
 *   seen, and the held messages follow (`catchUp`).
 * While the hub holds, nothing is delivered live, so no connection gets a newer
 * message ahead of an older one it has not had.
 */
export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly barrier: SubscribeBarrier<ChannelEntry>;
  private readonly recent: RecentMessages;
  private counters = { messagesIn: 0, deliveries: 0, gapsFilled: 0, catchUps: 0 };
  /** Highest sequence delivered on any channel: everything republished before it has arrived. */
  private maxSeenSeq = 0;
  /** Gap fills and catch-ups in progress; live messages are held while any runs. */
  private holds = 0;
  private held: Array<{ entry: ChannelEntry; msg: StoredMessage }> = [];
  /** Highest sequence dropped from `held` when it overflowed: the catch-up's scan reads at least this far. */
  private droppedUpTo = 0;
  /** Set from a suspected loss until the catch-up after it completed: scan the stream after this sequence. */
  private catchUpFrom: number | undefined;
  private catchUpRunning = false;
  private catchUpAgain = false;
  private readonly seenWaiters = new SeenWaiters(() => this.holds > 0 && !this.closed);
  private closed = false;
  /** Stream position noted at the previous check, trusted once a check interval passed without a loss. */
  private notedPosition: number | undefined;
  /** When onSequenceBehind was last called. */
  private behindAt = 0;

  constructor(
    private readonly feed: LiveFeed,
    private readonly reader: StreamReader,
    private readonly epochSec: () => number,
    private readonly log: Logger,
    private readonly opts: HubOptions,
  ) {
    this.recent = new RecentMessages(opts.recentBytes, opts.recentPerChannel);
    this.barrier = new SubscribeBarrier(
      () => feed.flush(),
      () => reader.end(),
      (entries, end) => {
        for (const e of entries) e.completeFrom ??= end;
      },
      log,
    );
  }

  /**
   * Adds a session to its channels, subscribing to the ones new to this gateway.
   * Resolves once the server has the subscriptions, so nothing stored after this
   * point can be missed: also those another session's attach asked for moments ago
   * and that are still being confirmed (a replay started before would read the stream
   * too early, and a message stored in between would reach neither it nor live delivery).
   */
  attach(session: Session): Promise<void> {
    const fresh: ChannelEntry[] = [];
    let pending: Promise<void>[] | undefined;
    for (const key of session.keys) {
      let entry = this.channels.get(key);
      if (entry === undefined) {
        entry = this.subscribe(key);
        fresh.push(entry);
      } else if (entry.completeFrom === undefined && entry.confirmed !== undefined) {
        (pending ??= []).push(entry.confirmed);
      }
      entry.sessions.add(session);
    }
    if (fresh.length > 0) {
      const confirmed = this.barrier.confirm(fresh);
      for (const e of fresh) e.confirmed = confirmed;
      (pending ??= []).push(confirmed);
    }
    if (pending === undefined) return Promise.resolve();
    return pending.length === 1 ? pending[0]! : Promise.all(pending).then(() => undefined);
  }

  detach(session: Session): void {
    const now = Date.now();
    for (const key of session.keys) {
      const entry = this.channels.get(key);
      if (entry === undefined) continue;
      entry.sessions.delete(session);
      if (entry.sessions.size === 0) entry.idleSince = now;
    }
  }

  /** Sessions on a channel (for connection limits). */
  sessionsOf(key: string): ReadonlySet<Session> | undefined {
    return this.channels.get(key)?.sessions;
  }

  /** Drops subscriptions of channels idle for longer than the linger time. */
  sweep(now = Date.now()): void {
    if (this.holds > 0) return;
    for (const entry of this.channels.values()) {
      if (entry.sessions.size === 0 && now - entry.idleSince >= this.opts.lingerMs) {
        entry.sub.unsubscribe();
        this.channels.delete(entry.key);
        this.recent.forget(entry.key);
      }
    }
  }

  /**
   * Keeps the catch-up starting point recent on a quiet gateway. A stream position
   * read while nothing was suspected is trusted one check later: by then everything
   * up to it has been republished to this connection.
   */
  notePosition(streamLastSeq: number): void {
    if (this.notedPosition !== undefined && this.catchUpFrom === undefined) this.advanceSeen(this.notedPosition);
    this.notedPosition = this.catchUpFrom === undefined ? streamLastSeq : undefined;
  }

  /** The stream's position could not be read: the next one noted is not trusted before the check after it. */
  forgetPosition(): void {
    this.notedPosition = undefined;
  }

  /**
   * The stream was re-created: its sequences start again. Nothing delivered counts any
   * more; what the new stream got before this was noticed may have been taken for
   * duplicates, so channels count as complete only after `streamLastSeq` (a replay from
   * the start reads them), and a catch-up under way starts over from the beginning.
   */
  resetEpoch(streamLastSeq: number): void {
    for (const e of this.channels.values()) {
      e.lastSeq = 0;
      e.completeFrom = streamLastSeq;
    }
    this.maxSeenSeq = 0;
    this.notedPosition = undefined;
    this.droppedUpTo = 0;
    this.held = [];
    this.recent.clear();
    if (this.catchUpFrom !== undefined) this.catchUpFrom = 0;
  }

  /** At start nothing is subscribed, so the stream's current end is a safe starting point. */
  startAt(streamLastSeq: number): void {
    this.advanceSeen(streamLastSeq);
  }

  /** The NATS connection dropped: republished messages are lost until the catch-up after the reconnect. */
  noteDisconnect(): void {
    this.suspectLoss('nats disconnected');
  }

  /**
   * Something may have lost republished messages on any channel (a disconnect, a
   * stream leader change): hold live messages from now on and remember where the
   * catch-up must start. Call it synchronously from the event, before the next live
   * message is handled; `catchUp` ends the hold.
   */
  suspectLoss(reason: string, fromSeq = this.maxSeenSeq): void {
    this.notedPosition = undefined;
    if (this.catchUpFrom === undefined) {
      this.catchUpFrom = fromSeq;
      this.holds++;
      this.log.info({ reason, fromSeq }, 'live delivery held for a catch-up');
    } else {
      this.catchUpFrom = Math.min(this.catchUpFrom, fromSeq);
    }
    if (this.catchUpRunning) this.catchUpAgain = true;
  }

  /**
   * True when the hub knows that nothing newer than `afterSeq` was stored on the
   * channel: it has received every message there since before `afterSeq`, and none
   * of them is newer. A replay can then skip reading that channel from the stream
   * (a long poll coming back with the mid of the message it just got, typically).
   */
  knowsNothingAfter(key: string, afterSeq: number): boolean {
    const e = this.channels.get(key);
    return this.holds === 0 && e !== undefined && e.completeFrom !== undefined && e.completeFrom <= afterSeq && e.lastSeq <= afterSeq;
  }

  /**
   * The channel's replayable messages after `fromSeq` from memory, when the hub holds
   * the channel and its recent history reaches back that far; undefined when the
   * stream has to be read.
   */
  recentAfter(key: string, fromSeq: number, limit: number): ChannelRead | undefined {
    const e = this.channels.get(key);
    if (this.holds > 0 || e === undefined || e.completeFrom === undefined) return undefined;
    return this.recent.after(key, fromSeq, limit, e.lastSeq);
  }

  /** The newest sequence the hub delivered on a channel it holds. */
  deliveredUpTo(key: string): number | undefined {
    return this.channels.get(key)?.lastSeq;
  }

  /** Bytes of recent messages kept for replays from memory. */
  get recentBytes(): number {
    return this.recent.bytes;
  }

  /**
   * Resolves true once live delivery has handed out everything on `keys` stored up to
   * `seq`, false when it has not after a while (see SeenWaiters: longer while live
   * delivery is held for a catch-up): a replay that read up to `seq` then has in its
   * connection's buffer every message it did not read itself. Nothing is waited for up
   * to the point the subscriptions started from.
   */
  whenSeen(seq: number, keys: readonly string[]): Promise<boolean> {
    if (this.holds === 0 && (this.maxSeenSeq >= seq || keys.every((k) => (this.channels.get(k)?.completeFrom ?? -1) >= seq))) {
      return Promise.resolve(true);
    }
    return this.seenWaiters.wait(seq);
  }

  stats(): HubStats {
    return { channels: this.channels.size, ...this.counters };
  }

  close(): void {
    this.closed = true;
    for (const entry of this.channels.values()) entry.sub.unsubscribe();
    this.channels.clear();
    this.seenWaiters.releaseAll();
  }

  /**
   * Reads every message stored after the point `suspectLoss` noted and delivers those
   * of this gateway's channels in order, then the held live messages; live delivery
   * resumes after. Runs again (from where the last pass ended) when asked meanwhile or
   * when the held messages overflowed; retries until it succeeds or the hub closes.
   */
  async catchUp(reason: string): Promise<void> {
    if (this.catchUpFrom === undefined) this.suspectLoss(reason);
    if (this.catchUpRunning) {
      this.catchUpAgain = true;
      return;
    }
    this.catchUpRunning = true;
    const started = Date.now();
    let delivered = 0;
    try {
      do {
        this.catchUpAgain = false;
        const from = this.catchUpFrom!;
        try {
          const found: StoredMessage[] = [];
          const last = await this.reader.scan(from, (key) => this.channels.has(key), (m) => found.push(m), () => this.droppedUpTo);
          const holes = await this.holesBefore(from, found);
          const all = holes.length > 0 ? [...holes, ...found].sort((a, b) => a.seq - b.seq) : found;
          for (const m of all) {
            const entry = this.channels.get(m.key);
            if (entry !== undefined && m.seq > entry.lastSeq) {
              this.deliver(entry, m);
              delivered++;
            }
          }
          this.catchUpFrom = Math.max(this.catchUpFrom!, last);
          // Held messages dropped after the scan stopped reading: read on.
          if (this.droppedUpTo > this.catchUpFrom) this.catchUpAgain = true;
        } catch (err) {
          if (this.closed) return;
          this.log.warn({ err, reason }, 'catch-up failed, retrying');
          this.catchUpAgain = true;
          // Usually the stream has no leader yet: try again soon, live delivery is held meanwhile.
          await delay(CATCH_UP_RETRY_MS);
        }
      } while (this.catchUpAgain && !this.closed);
      this.counters.catchUps++;
      this.log.info({ reason, count: delivered, durationMs: Date.now() - started }, 'caught up');
    } finally {
      this.catchUpRunning = false;
      if (!this.closed) {
        this.catchUpFrom = undefined;
        this.release();
      }
    }
  }

  /**
   * Messages a channel may have lost before `from` without any event (a route that
   * dropped republished messages, interest still on its way to the stream leader):
   * the scan starts at `from`, and delivering its newer messages first would hide them
   * for good. Checked for the channels the scan found something for, from what each
   * had delivered (or its subscription's start); one read each when nothing is missing.
   */
  private async holesBefore(from: number, found: readonly StoredMessage[]): Promise<StoredMessage[]> {
    const starts = new Map<string, number>();
    for (const m of found) {
      if (starts.has(m.key)) continue;
      const e = this.channels.get(m.key);
      if (e === undefined || e.completeFrom === undefined) continue;
      const start = Math.max(e.lastSeq, e.completeFrom);
      if (start < from) starts.set(m.key, start);
    }
    const holes: StoredMessage[] = [];
    const keys = [...starts.keys()];
    for (let i = 0; i < keys.length; i += HOLE_CHECKS_AT_ONCE) {
      await Promise.all(
        keys.slice(i, i + HOLE_CHECKS_AT_ONCE).map(async (key) => {
          for await (const m of this.reader.after(key, starts.get(key)!)) {
            if (m.seq > from) break;
            holes.push(m);
          }
        }),
      );
    }
    if (holes.length > 0) this.log.warn({ count: holes.length, channels: keys.length, fromSeq: from }, 'live delivery had missed messages before the catch-up point');
    return holes;
  }

  private subscribe(key: string): ChannelEntry {
    const entry: ChannelEntry = { key, sessions: new Set(), lastSeq: 0, idleSince: 0, completeFrom: undefined, confirmed: undefined, sub: this.feed.subscribe(key, this.onLive) };
    this.channels.set(key, entry);
    return entry;
  }

  /** Every channel's live messages, one handler (not a closure per channel). */
  private readonly onLive = (msg: StoredMessage): void => {
    const entry = this.channels.get(msg.key);
    if (entry !== undefined) this.onMessage(entry, msg);
  };

  private onMessage(entry: ChannelEntry, msg: StoredMessage): void {
    this.counters.messagesIn++;
    if (this.holds > 0) this.hold(entry, msg);
    else this.onStored(entry, msg);
  }

  /**
   * Keeps the newest `maxHeldMessages`; the oldest ones are dropped and the catch-up's
   * scan reads on until it has passed them, so it ends under steady traffic (the scan
   * chases the held window) and nothing is lost.
   */
  private hold(entry: ChannelEntry, msg: StoredMessage): void {
    this.held.push({ entry, msg });
    if (this.held.length <= this.opts.maxHeldMessages) return;
    const dropped = this.held.shift()!.msg.seq;
    this.droppedUpTo = Math.max(this.droppedUpTo, dropped);
    // A catch-up under way reads on to `droppedUpTo`; otherwise (a gap fill holds) start one.
    if (this.catchUpFrom === undefined) {
      this.suspectLoss('held messages overflowed', dropped - 1);
      void this.catchUp('held messages overflowed');
    }
  }

  private onStored(entry: ChannelEntry, msg: StoredMessage): void {
    if (msg.seq <= Math.max(entry.lastSeq, entry.completeFrom ?? 0)) this.sequenceBehind();
    if (msg.seq <= entry.lastSeq) return; // delivered already (by a gap fill or a catch-up)
    // What this channel has delivered, or the point from which everything arrives live.
    const upTo = entry.completeFrom === undefined ? (entry.lastSeq > 0 ? entry.lastSeq : undefined) : Math.max(entry.lastSeq, entry.completeFrom);
    if (upTo !== undefined && msg.prevSeq !== undefined && msg.prevSeq > upTo) {
      void this.fillGap(entry, upTo, msg);
      return;
    }
    this.deliver(entry, msg);
  }

  /** Reads the channel's messages between `from` and `next` while live delivery is held, then goes on. */
  private async fillGap(entry: ChannelEntry, from: number, next: StoredMessage): Promise<void> {
    this.holds++;
    this.held.push({ entry, msg: next });
    try {
      let count = 0;
      for await (const m of this.reader.after(entry.key, from)) {
        if (m.seq >= next.seq) break;
        if (m.seq > entry.lastSeq) this.deliver(entry, m);
        count++;
      }
      this.counters.gapsFilled++;
      this.log.info({ channel: entry.key, fromSeq: from, toSeq: next.seq, count }, 'gap filled');
    } catch (err) {
      this.log.warn({ err, channel: entry.key, fromSeq: from, toSeq: next.seq }, 'gap fill failed, catching up');
      this.suspectLoss('gap fill failed', from);
      void this.catchUp('gap fill failed');
    } finally {
      this.release();
    }
  }

  /** Ends one hold; when none is left, hands out what was held, in stream order. */
  private release(): void {
    this.holds--;
    if (this.holds > 0) return;
    const held = this.held;
    this.held = [];
    held.sort((a, b) => a.msg.seq - b.msg.seq);
    for (const { entry, msg } of held) {
      if (this.holds > 0) this.hold(entry, msg);
      else this.onStored(entry, msg);
    }
    if (this.holds === 0) this.seenWaiters.wake(this.maxSeenSeq);
  }

  private deliver(entry: ChannelEntry, msg: StoredMessage): void {
    // Once confirmed, a channel's messages arrive here in order without gaps: all after this point are this one and the next.
    if (entry.completeFrom !== undefined) this.recent.record(entry.key, msg, Math.max(entry.lastSeq, entry.completeFrom));
    entry.lastSeq = msg.seq;
    this.advanceSeen(msg.seq);
    if (entry.sessions.size === 0) return;
    const d = new Delivery(msg, this.epochSec(), Date.now());
    for (const s of entry.sessions) s.deliver(d);
    this.counters.deliveries += entry.sessions.size;
  }

  private sequenceBehind(): void {
    const now = Date.now();
    if (this.opts.onSequenceBehind === undefined || now - this.behindAt < 500) return;
    this.behindAt = now;
    this.opts.onSequenceBehind();
  }

  private advanceSeen(seq: number): void {
    if (seq <= this.maxSeenSeq) return;
    this.maxSeenSeq = seq;
    if (this.holds === 0) this.seenWaiters.wake(seq);
  }
}
