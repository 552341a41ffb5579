import { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import type { Session } from './session.ts';

/**
 * limits.maxConnPerChannel, as Push server 2.0 applies it: per user channel (a
 * private id that came with a public id), on this gateway. When `session` would be
 * one too many, the oldest holders are closed with 4029 (a long poll answers 429).
 */
export function enforceConnectionLimit(session: Session, onChannel: Iterable<Session> | undefined, max: number, log: Logger): void {
  const key = session.limitedKey;
  if (key === undefined || onChannel === undefined) return;
  const holders = [...onChannel].filter((s) => s !== session && s.limitedKey === key && !s.isClosed);
  let excess = holders.length + 1 - max;
  if (excess <= 0) return;
  holders.sort((a, b) => a.openedAt - b.openedAt || a.id - b.id);
  for (const oldest of holders) {
    if (excess-- <= 0) break;
    log.info({ connId: oldest.id, closeCode: CloseCode.TooManyConnections }, 'connection limit reached, closing the oldest');
    oldest.close(CloseCode.TooManyConnections);
  }
}
