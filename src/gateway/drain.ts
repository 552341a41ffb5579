import { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import { delay } from '../util/deferred.ts';
import type { Session } from './session.ts';

const TICK_MS = 100;

/**
 * Closes the sessions (1012 for WebSockets, 304 with their resume point for long
 * polls) in batches spread over `windowMs`, in random order, so clients come back on
 * other gateways a few at a time and resume by mid. Resolves when all are closed.
 */
export async function closeInBatches(sessions: readonly Session[], windowMs: number, log: Logger): Promise<void> {
  const all = [...sessions];
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const ticks = Math.max(1, Math.floor(windowMs / TICK_MS));
  const perTick = Math.ceil(all.length / ticks);
  log.info({ count: all.length, windowMs, batchSize: perTick }, 'draining');
  for (let i = 0; i < all.length; i += perTick) {
    for (const s of all.slice(i, i + perTick)) s.close(CloseCode.ServiceRestart);
    if (i + perTick < all.length) await delay(TICK_MS);
  }
  log.info({ count: all.length }, 'drained');
}
