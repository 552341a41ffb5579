import type { Refusal } from '../telemetry/telemetry.ts';

interface RefusalReply {
  readonly status: 429 | 503;
  readonly statusText: string;
  /** Retry-After, seconds. The official client does not read it and backs off 15 s or more after any refusal (official-client.md §6–7). */
  readonly retryAfterSec: number;
  /** Body of a long poll's answer. */
  readonly pollText: string;
  /** Body of a refused WebSocket handshake. */
  readonly upgradeText: string;
}

const busy = (retryAfterSec: number): RefusalReply => ({
  status: 503,
  statusText: 'Service Unavailable',
  retryAfterSec,
  pollText: 'server busy, retry later',
  upgradeText: 'Server busy, retry later.',
});

const tooMany = (retryAfterSec: number): RefusalReply => ({
  status: 429,
  statusText: 'Too Many Requests',
  retryAfterSec,
  pollText: 'too many connections from this address, retry later',
  upgradeText: 'Too many connections from this address, retry later.',
});

/**
 * How each refusal is answered: a long poll with the status and Retry-After, a
 * WebSocket upgrade with the same status instead of `101` (never accepted and then
 * closed: after an open socket closes the official client comes back in 0.5 s, after
 * a refused handshake in 15 s and more). 503 says this process cannot take it now,
 * and nginx tries another gateway (proxy_next_upstream http_503); 429 says the
 * client's address is over its own limit, which another gateway would not change.
 */
export const REFUSAL_REPLIES: Readonly<Record<Refusal, RefusalReply>> = {
  draining: busy(1),
  'connection-rate': busy(1),
  'replay-queue': busy(1),
  mailbox: busy(1),
  'client-mailbox': busy(1),
  connections: busy(10),
  memory: busy(10),
  'connections-per-ip': tooMany(10),
  'connection-rate-per-ip': tooMany(1),
};
