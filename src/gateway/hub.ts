import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.ts';
import { decodeStored } from '../nats/stored-message.ts';
import { liveSubject } from '../nats/subjects.ts';
import { Delivery } from './delivery.ts';
import type { Session } from './session.ts';

interface ChannelEntry {
  readonly key: string;
  readonly sessions: Set<Session>;
  readonly sub: Subscription;
  /** Sequence of the last message seen on this channel (0: none yet). */
  lastSeq: number;
  /** When the last session left; the subscription lingers a little for the next poll. */
  idleSince: number;
}

export interface HubStats {
  readonly channels: number;
  readonly messagesIn: number;
  readonly deliveries: number;
}

/**
 * The gateway's registry of channel → local connections, and its only source of
 * live messages: one core NATS subscription to `push.live.<kind>.<id>` per channel
 * that has at least one local connection. No JetStream consumer per connection or
 * channel: the stream republishes each stored message to that subject.
 *
 * Each message is decoded once and handed, as one Delivery, to every connection on
 * the channel; the hub never waits for a connection.
 */
export class Hub {
  private readonly channels = new Map<string, ChannelEntry>();
  private flushWaiters: Array<() => void> | null = null;
  private counters = { messagesIn: 0, deliveries: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly epochSec: () => number,
    private readonly log: Logger,
    /** Idle channels keep their subscription this long, so a long poll's next request finds it. */
    private readonly lingerMs: number,
  ) {}

  /**
   * Adds a session to its channels, subscribing to the ones new to this gateway.
   * Resolves once the server has the subscriptions, so nothing stored after this
   * point can be missed.
   */
  attach(session: Session): Promise<void> {
    let subscribed = false;
    for (const key of session.keys) {
      let entry = this.channels.get(key);
      if (entry === undefined) {
        entry = this.subscribe(key);
        subscribed = true;
      }
      entry.sessions.add(session);
    }
    return subscribed ? this.serverBarrier() : Promise.resolve();
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

  /** Last sequence this gateway saw on a channel, 0 if none. */
  lastSeqOf(key: string): number {
    return this.channels.get(key)?.lastSeq ?? 0;
  }

  /** Drops subscriptions of channels idle for longer than the linger time. */
  sweep(now = Date.now()): void {
    for (const entry of this.channels.values()) {
      if (entry.sessions.size === 0 && now - entry.idleSince >= this.lingerMs) {
        entry.sub.unsubscribe();
        this.channels.delete(entry.key);
      }
    }
  }

  stats(): HubStats {
    return { channels: this.channels.size, ...this.counters };
  }

  close(): void {
    for (const entry of this.channels.values()) entry.sub.unsubscribe();
    this.channels.clear();
  }

  private subscribe(key: string): ChannelEntry {
    const entry: ChannelEntry = {
      key,
      sessions: new Set(),
      lastSeq: 0,
      idleSince: 0,
      sub: this.nc.subscribe(liveSubject(key), {
        callback: (err, msg) => {
          if (err) {
            this.log.warn({ err, channel: key }, 'live subscription failed');
            return;
          }
          this.onMessage(entry, msg);
        },
      }),
    };
    this.channels.set(key, entry);
    return entry;
  }

  private onMessage(entry: ChannelEntry, msg: Msg): void {
    const h = msg.headers;
    if (h === undefined) return;
    const seq = Number(h.get('Nats-Sequence'));
    const prev = h.get('Nats-Last-Sequence');
    const now = Date.now();
    const stored = decodeStored(h, entry.key, msg.data, seq, now, prev === '' ? undefined : Number(prev));
    entry.lastSeq = seq;
    this.counters.messagesIn++;
    if (entry.sessions.size === 0) return;
    const d = new Delivery(stored, this.epochSec(), now);
    for (const s of entry.sessions) s.deliver(d);
    this.counters.deliveries += entry.sessions.size;
  }

  /**
   * Resolves after a round trip to the server that started after every SUB sent so
   * far: one flush serves every attach of the same event-loop turn.
   */
  private serverBarrier(): Promise<void> {
    return new Promise((resolve) => {
      if (this.flushWaiters !== null) {
        this.flushWaiters.push(resolve);
        return;
      }
      const waiters = [resolve];
      this.flushWaiters = waiters;
      setImmediate(() => {
        this.flushWaiters = null;
        this.nc.flush().then(
          () => waiters.forEach((w) => w()),
          (err: unknown) => {
            this.log.warn({ err }, 'subscription flush failed');
            waiters.forEach((w) => w());
          },
        );
      });
    });
  }
}
