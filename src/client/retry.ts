import { backoffMs } from '../util/backoff.ts';
import { delay } from '../util/deferred.ts';
import { AttemptError } from './errors.ts';

/**
 * How long a publish keeps trying after temporary failures. The whole budget must stay
 * inside the server's `storage.duplicateWindowMs` (120 s by default): a retry later
 * than that with the same key could be stored a second time.
 */
export interface RetryPolicy {
  /** Requests at most, the first included. Default 6. */
  readonly maxAttempts: number;
  /** Time from the first request after which no new attempt starts (ms). Default 60 000. */
  readonly maxElapsedMs: number;
  /** First backoff ceiling (ms); each retry doubles it, full jitter. Default 250. */
  readonly baseDelayMs: number;
  /** Largest backoff (ms); a server's Retry-After is waited at least. Default 5 000. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 6, maxElapsedMs: 60_000, baseDelayMs: 250, maxDelayMs: 5_000 };

export interface RetryEvent {
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: AttemptError;
}

export type Outcome<T> = { ok: true; value: T; attempts: number } | { ok: false; error: AttemptError; attempts: number };

/** Runs `attempt` until it succeeds, fails permanently, or the policy's budget is spent. */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  onRetry: (e: RetryEvent) => void,
): Promise<Outcome<T>> {
  const started = Date.now();
  for (let n = 1; ; n++) {
    try {
      return { ok: true, value: await attempt(), attempts: n };
    } catch (err) {
      if (!(err instanceof AttemptError)) throw err;
      if (!err.temporary || n >= policy.maxAttempts) return { ok: false, error: err, attempts: n };
      const wait = Math.max(backoffMs(n, policy.baseDelayMs, policy.maxDelayMs), err.extra.retryAfterMs ?? 0);
      if (Date.now() - started + wait > policy.maxElapsedMs) return { ok: false, error: err, attempts: n };
      onRetry({ attempt: n, delayMs: wait, error: err });
      await delay(wait);
    }
  }
}
