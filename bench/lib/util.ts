import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across the load generator. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Progress lines go to stderr so stdout carries only the table and the JSON line. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

export function round(n: number, digits = 3): number {
  if (!Number.isFinite(n)) return n;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Polls `check` until it is true, at most until `deadline` (ms, nowMs clock); also
 * gives up when `idleMs` passes without `progress()` changing. Resolves with the
 * reason it stopped.
 */
export async function waitUntil(
  check: () => boolean,
  opts: { deadline: number; idleMs?: number; progress?: () => number; intervalMs?: number; onTick?: () => void },
): Promise<'done' | 'deadline' | 'idle'> {
  let lastProgress = opts.progress?.() ?? 0;
  let lastChange = nowMs();
  for (;;) {
    if (check()) return 'done';
    const t = nowMs();
    if (t >= opts.deadline) return 'deadline';
    if (opts.progress !== undefined && opts.idleMs !== undefined) {
      const p = opts.progress();
      if (p !== lastProgress) {
        lastProgress = p;
        lastChange = t;
      } else if (t - lastChange >= opts.idleMs) {
        return 'idle';
      }
    }
    opts.onTick?.();
    await sleep(Math.min(opts.intervalMs ?? 20, Math.max(1, opts.deadline - t)));
  }
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` in flight; stops issuing at `deadline`. */
export async function boundedLoop(
  count: number,
  concurrency: number,
  deadline: number,
  fn: (i: number) => Promise<void>,
): Promise<{ issued: number; stoppedByDeadline: boolean }> {
  let next = 0;
  let stoppedByDeadline = false;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (next >= count) return;
      if (nowMs() >= deadline) {
        stoppedByDeadline = true;
        return;
      }
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  return { issued: next, stoppedByDeadline };
}

/** A random 32-character lowercase hex id. */
export function randomHexId(): string {
  let s = '';
  for (let i = 0; i < 4; i++) s += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return s;
}
