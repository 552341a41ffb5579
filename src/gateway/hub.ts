import type { Logger } from '../log/logger.ts';
import type { LiveFeed, LiveSubscription } from '../nats/live-feed.ts';
import type { StoredMessage } from '../nats/stored-message.ts';
import type { StreamReader } from '../nats/stream-reader.ts';
import { delay } from '../util/deferred.ts';
import { Delivery } from './delivery.ts';
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
  /** Live messages held while this channel's gap is being filled from the stream. */
  gapPending: StoredMessage[] | undefined;
  /**
   * Every message on this channel with a higher sequence has reached the hub (while
   * `liveIntact`): the stream's end when the subscription was confirmed. Undefined
   * until then.
   */
  completeFrom: number | undefined;
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
  /** Live messages held during a whole-stream catch-up; beyond it they are read again from the stream. */
  maxHeldMessages: number;
}

/**
 * The gateway's registry of channel → local connections, and its only source of
 * live messages: one core NATS subscription to `push.live.<kind>.<id>` per channel
 * with at least one local connection. No JetStream consumer per connection or
 * channel: the stream republishes each stored message to that subject.
 *
 * Each message is decoded once and handed, as one Delivery, to every connection on
 * the channel; the hub never waits for a connection.
 *
 * Nothing is left to luck when live delivery misses something:
 * - every republished message carries its channel's previous sequence; when it is
 *   ahead of the last one delivered, the gap is read from the stream and delivered
 *   first (`fillGap`);
 * - after a NATS reconnect or a stream leader change, messages republished meanwhile
 *   are lost for every channel at once: the stream is scanned from the last sequence
 *   this gateway saw, in order, while new live messages wait (`catchUp`).
 */
export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  private readonly barrier: SubscribeBarrier<ChannelEntry>;
  private counters = { messagesIn: 0, deliveries: 0, gapsFilled: 0, catchUps: 0 };
  /** Highest sequence seen on any channel: everything republished before it has arrived. */
  private maxSeenSeq = 0;
  private catchingUp = false;
  private catchUpAgain = false;
  private held: Array<{ entry: ChannelEntry; msg: StoredMessage }> = [];
  private closed = false;
  /** Stream position noted at the previous check, trusted once a check interval passed without a disconnect. */
  private notedPosition: number | undefined;
  /** False from a disconnect until the catch-up after it completed: live delivery may have missed something. */
  private liveIntact = true;

  constructor(
    private readonly feed: LiveFeed,
    private readonly reader: StreamReader,
    private readonly epochSec: () => number,
    private readonly log: Logger,
    private readonly opts: HubOptions,
  ) {
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
   * point can be missed.
   */
  attach(session: Session): Promise<void> {
    const fresh: ChannelEntry[] = [];
    for (const key of session.keys) {
      let entry = this.channels.get(key);
      if (entry === undefined) {
        entry = this.subscribe(key);
        fresh.push(entry);
      }
      entry.sessions.add(session);
    }
    return fresh.length > 0 ? this.barrier.confirm(fresh) : Promise.resolve();
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
    for (const entry of this.channels.values()) {
      if (entry.sessions.size === 0 && entry.gapPending === undefined && now - entry.idleSince >= this.opts.lingerMs) {
        entry.sub.unsubscribe();
        this.channels.delete(entry.key);
      }
    }
  }

  /**
   * Keeps the catch-up starting point recent on a quiet gateway. A stream position
   * read while connected is trusted one check later: by then everything up to it
   * has been republished to this connection. A disconnect voids the noted position.
   */
  notePosition(streamLastSeq: number): void {
    if (this.notedPosition !== undefined && !this.catchingUp) this.maxSeenSeq = Math.max(this.maxSeenSeq, this.notedPosition);
    this.notedPosition = streamLastSeq;
  }

  /** At start nothing is subscribed, so the stream's current end is a safe starting point. */
  startAt(streamLastSeq: number): void {
    this.maxSeenSeq = Math.max(this.maxSeenSeq, streamLastSeq);
  }

  noteDisconnect(): void {
    this.notedPosition = undefined;
    this.liveIntact = false;
  }

  /**
   * True when the hub knows that nothing newer than `afterSeq` was stored on the
   * channel: it has received every message there since before `afterSeq`, and none
   * of them is newer. A replay can then skip reading that channel from the stream
   * (a long poll coming back with the mid of the message it just got, typically).
   */
  knowsNothingAfter(key: string, afterSeq: number): boolean {
    const e = this.channels.get(key);
    return (
      e !== undefined &&
      this.liveIntact &&
      !this.catchingUp &&
      e.gapPending === undefined &&
      e.completeFrom !== undefined &&
      e.completeFrom <= afterSeq &&
      e.lastSeq <= afterSeq
    );
  }

  stats(): HubStats {
    return { channels: this.channels.size, ...this.counters };
  }

  close(): void {
    this.closed = true;
    for (const entry of this.channels.values()) entry.sub.unsubscribe();
    this.channels.clear();
  }

  /**
   * Reads every message stored after the last one this gateway saw and delivers
   * those of its channels, in order; live messages wait meanwhile. Runs again if
   * asked while running. Retries until it succeeds or the hub closes.
   */
  async catchUp(reason: string): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    const started = Date.now();
    let delivered = 0;
    try {
      do {
        this.catchUpAgain = false;
        try {
          const from = this.maxSeenSeq;
          const last = await this.reader.scan(from, (key) => this.channels.has(key), (m) => {
            const entry = this.channels.get(m.key);
            if (entry !== undefined && m.seq > entry.lastSeq) {
              this.deliver(entry, m);
              delivered++;
            }
          });
          this.maxSeenSeq = Math.max(this.maxSeenSeq, last);
        } catch (err) {
          if (this.closed) return;
          this.log.warn({ err, reason }, 'catch-up failed, retrying');
          this.catchUpAgain = true;
          await delay(1_000);
        }
      } while (this.catchUpAgain && !this.closed);
      const held = this.held;
      this.held = [];
      for (const { entry, msg } of held) this.onStored(entry, msg);
      this.counters.catchUps++;
      if (!this.feed.closed) this.liveIntact = true;
      this.log.info({ reason, count: delivered, durationMs: Date.now() - started }, 'caught up');
    } finally {
      this.catchingUp = false;
    }
  }

  private subscribe(key: string): ChannelEntry {
    const entry: ChannelEntry = {
      key,
      sessions: new Set(),
      lastSeq: 0,
      idleSince: 0,
      gapPending: undefined,
      completeFrom: undefined,
      sub: this.feed.subscribe(key, (m) => this.onMessage(entry, m)),
    };
    this.channels.set(key, entry);
    return entry;
  }

  private onMessage(entry: ChannelEntry, stored: StoredMessage): void {
    this.counters.messagesIn++;
    if (this.catchingUp) {
      if (this.held.length < this.opts.maxHeldMessages) this.held.push({ entry, msg: stored });
      else this.catchUpAgain = true;
      return;
    }
    this.onStored(entry, stored);
  }

  private onStored(entry: ChannelEntry, msg: StoredMessage): void {
    if (entry.gapPending !== undefined) {
      entry.gapPending.push(msg);
      return;
    }
    if (msg.seq <= entry.lastSeq) return; // delivered already (by a gap fill or a catch-up)
    if (entry.lastSeq > 0 && msg.prevSeq !== undefined && msg.prevSeq > entry.lastSeq) {
      void this.fillGap(entry, msg);
      return;
    }
    this.deliver(entry, msg);
  }

  /** Reads the channel's messages between the last delivered one and `next`, then delivers them and what waited. */
  private async fillGap(entry: ChannelEntry, next: StoredMessage): Promise<void> {
    entry.gapPending = [next];
    const from = entry.lastSeq;
    try {
      const missing: StoredMessage[] = [];
      for await (const m of this.reader.after(entry.key, from)) {
        if (m.seq >= next.seq) break;
        missing.push(m);
      }
      for (const m of missing) if (m.seq > entry.lastSeq) this.deliver(entry, m);
      this.counters.gapsFilled++;
      this.log.info({ channel: entry.key, fromSeq: from, toSeq: next.seq, count: missing.length }, 'gap filled');
    } catch (err) {
      this.log.warn({ err, channel: entry.key, fromSeq: from, toSeq: next.seq }, 'gap fill failed');
    } finally {
      const pending = entry.gapPending ?? [];
      entry.gapPending = undefined;
      pending.sort((a, b) => a.seq - b.seq);
      for (const m of pending) if (m.seq > entry.lastSeq) this.deliver(entry, m);
    }
  }

  private deliver(entry: ChannelEntry, msg: StoredMessage): void {
    entry.lastSeq = msg.seq;
    if (msg.seq > this.maxSeenSeq) this.maxSeenSeq = msg.seq;
    if (entry.sessions.size === 0) return;
    const d = new Delivery(msg, this.epochSec(), Date.now());
    for (const s of entry.sessions) s.deliver(d);
    this.counters.deliveries += entry.sessions.size;
  }
}
