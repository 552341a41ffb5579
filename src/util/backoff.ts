/** Full-jitter exponential backoff: a random wait up to base·2^(attempt−1), capped. */
export function backoffMs(attempt: number, baseMs = 500, capMs = 10_000): number {
  return Math.round(Math.random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1)));
}
