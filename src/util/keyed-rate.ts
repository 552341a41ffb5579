import { TokenBucket } from './token-bucket.ts';

/** How often buckets that filled up again are dropped. */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * One token bucket per key (a public id, a client address), made on first use. A
 * bucket that has filled up again is the same as a new one, so such buckets are
 * dropped now and then: memory follows the keys seen recently, not all keys ever.
 */
export class KeyedRate {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweptAt: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now = Date.now(),
  ) {
    this.sweptAt = now;
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes a token for `key`: 0 when taken, else the milliseconds until one is there (nothing taken). */
  take(key: string, now = Date.now()): number {
    if (now - this.sweptAt >= SWEEP_INTERVAL_MS) this.sweep(now);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.ratePerSec, this.burst, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now) ? 0 : bucket.waitMs(now);
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(key);
  }
}
