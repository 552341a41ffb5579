import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.ts';
import { decodeStored, type StoredMessage } from './stored-message.ts';
import { LIVE_PREFIX, leaderElectedSubject, liveSubject } from './subjects.ts';

interface PendingSubscription {
  readonly key: string;
  readonly onMessage: (m: StoredMessage) => void;
  sub: Subscription | undefined;
  cancelled: boolean;
}

/** One channel's live subscription. */
export interface LiveSubscription {
  unsubscribe(): void;
}

/**
 * `channel`: one core subscription per channel held (only its messages arrive, each
 * costs memory in the client and in nats-server). `all`: one subscription to every
 * channel's republished messages, routed here by subject; those of channels not held
 * are dropped before their headers are read.
 */
export type LiveSubscriptionMode = 'channel' | 'all';

/**
 * Live messages as the stream republishes them: one core subscription per channel
 * (`push.live.<kind>.<id>`), each message decoded once with the stream sequence and
 * the channel's previous sequence from the republish headers. Also the stream's
 * leader-change advisories, after which republished messages may have been lost.
 */
export class LiveFeed {
  /** Mode `all`: the one subscription and the channels it serves. */
  private all: { sub: Subscription; handlers: Map<string, (m: StoredMessage) => void> } | undefined;
  private readonly callbacks = new WeakMap<(m: StoredMessage) => void, (err: Error | null, msg: Msg) => void>();
  /** Mode `channel`: subscriptions asked for in this event-loop turn, sent together. */
  private readonly pending: PendingSubscription[] = [];
  private scheduled = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly log: Logger,
    private readonly mode: LiveSubscriptionMode = 'channel',
  ) {}

  /** One subscription per key at a time (the hub holds one per channel). */
  subscribe(key: string, onMessage: (m: StoredMessage) => void): LiveSubscription {
    if (this.mode === 'all') {
      const all = (this.all ??= this.subscribeAll());
      all.handlers.set(key, onMessage);
      return {
        unsubscribe: () => {
          if (all.handlers.get(key) === onMessage) all.handlers.delete(key);
        },
      };
    }
    const p: PendingSubscription = { key, onMessage, sub: undefined, cancelled: false };
    this.pending.push(p);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.subscribePending();
      });
    }
    return {
      unsubscribe: () => {
        p.cancelled = true;
        p.sub?.unsubscribe();
      },
    };
  }

  /**
   * Sends the subscriptions of the turn. The client writes what is asked of it in one
   * turn of microtasks together, and each handshake is its own callback: subscribing
   * there cost a socket write per connection in a reconnect wave. Here they are one.
   */
  private subscribePending(): void {
    for (const p of this.pending.splice(0)) if (!p.cancelled) p.sub = this.nc.subscribe(liveSubject(p.key), { callback: this.callbackFor(p.onMessage) });
  }

  /** One NATS callback per handler, not a closure per channel: the channel is in the subject. */
  private callbackFor(onMessage: (m: StoredMessage) => void): (err: Error | null, msg: Msg) => void {
    let callback = this.callbacks.get(onMessage);
    if (callback === undefined) {
      callback = (err, msg) => {
        if (err) {
          this.log.warn({ err }, 'live subscription failed');
          return;
        }
        const stored = decodeLive(msg.subject.slice(LIVE_PREFIX.length), msg);
        if (stored !== undefined) onMessage(stored);
      };
      this.callbacks.set(onMessage, callback);
    }
    return callback;
  }

  private subscribeAll(): { sub: Subscription; handlers: Map<string, (m: StoredMessage) => void> } {
    const handlers = new Map<string, (m: StoredMessage) => void>();
    const sub = this.nc.subscribe(`${LIVE_PREFIX}>`, {
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err }, 'live subscription failed');
          return;
        }
        const key = msg.subject.slice(LIVE_PREFIX.length);
        const handler = handlers.get(key);
        if (handler === undefined) return;
        const stored = decodeLive(key, msg);
        if (stored !== undefined) handler(stored);
      },
    });
    return { sub, handlers };
  }

  /** Resolves after a server round trip that started after every subscription made so far. */
  flush(): Promise<void> {
    this.subscribePending();
    return this.nc.flush();
  }

  /** Calls `listener` on every leader election of the stream; returns the unsubscribe. */
  onLeaderElected(listener: () => void): () => void {
    const sub: Subscription = this.nc.subscribe(leaderElectedSubject(this.stream), { callback: () => listener() });
    return () => sub.unsubscribe();
  }
}

function decodeLive(key: string, msg: Msg): StoredMessage | undefined {
  const h = msg.headers;
  if (h === undefined) return undefined;
  const prev = h.get('Nats-Last-Sequence');
  return decodeStored(h, key, msg.data, Number(h.get('Nats-Sequence')), Date.now(), prev === '' ? undefined : Number(prev));
}
