import type { Logger } from '../log/logger.ts';

/** How long a new subscription waits for the server's confirmation (NATS may be away). */
const CONFIRM_TIMEOUT_MS = 5_000;

/**
 * Confirms new subscriptions with the server, one round trip per event-loop turn
 * however many channels were subscribed in it. `confirm(batch)` resolves once the
 * server has every SUB sent so far; then the stream's end is read once, and every
 * message after it is sure to reach those subscriptions (`onConfirmed(end)`). While
 * NATS is away it gives up after a while: the catch-up after the reconnect covers it.
 */
export class SubscribeBarrier<T> {
  private pending: { waiters: Array<() => void>; items: T[] } | null = null;

  constructor(
    /** A server round trip after every subscription made so far. */
    private readonly flush: () => Promise<void>,
    /** The stream's last sequence now. */
    private readonly streamEnd: () => Promise<number>,
    private readonly onConfirmed: (items: readonly T[], streamEnd: number) => void,
    private readonly log: Logger,
  ) {}

  confirm(items: readonly T[]): Promise<void> {
    return new Promise((resolve) => {
      if (this.pending !== null) {
        this.pending.waiters.push(resolve);
        this.pending.items.push(...items);
        return;
      }
      const batch = { waiters: [resolve], items: [...items] };
      this.pending = batch;
      setImmediate(() => {
        this.pending = null;
        const done = (): void => batch.waiters.forEach((w) => w());
        const timer = setTimeout(done, CONFIRM_TIMEOUT_MS);
        this.flush()
          .then(() => this.streamEnd())
          .then(
            (end) => this.onConfirmed(batch.items, end),
            (err: unknown) => this.log.warn({ err }, 'subscription confirmation failed'),
          )
          .finally(() => {
            clearTimeout(timer);
            done();
          });
      });
    });
  }
}
