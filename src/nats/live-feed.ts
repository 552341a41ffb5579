import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.ts';
import { decodeStored, type StoredMessage } from './stored-message.ts';
import { leaderElectedSubject, liveSubject } from './subjects.ts';

/** One channel's live subscription. */
export interface LiveSubscription {
  unsubscribe(): void;
}

/**
 * Live messages as the stream republishes them: one core subscription per channel
 * (`push.live.<kind>.<id>`), each message decoded once with the stream sequence and
 * the channel's previous sequence from the republish headers. Also the stream's
 * leader-change advisories, after which republished messages may have been lost.
 */
export class LiveFeed {
  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly log: Logger,
  ) {}

  subscribe(key: string, onMessage: (m: StoredMessage) => void): LiveSubscription {
    return this.nc.subscribe(liveSubject(key), {
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err, channel: key }, 'live subscription failed');
          return;
        }
        const stored = decodeLive(key, msg);
        if (stored !== undefined) onMessage(stored);
      },
    });
  }

  /** Resolves after a server round trip that started after every subscription made so far. */
  flush(): Promise<void> {
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
