import type { Refusal } from '../telemetry/telemetry.ts';
import { TokenBucket } from '../util/token-bucket.ts';

export interface AddressLimits {
  /** Open connections of the whole process. */
  maxConnections: number;
  /** Open connections (WebSockets and held long polls) from one address. */
  maxConnectionsPerIp: number;
  /** New connections from one address per second, once its burst is spent. */
  maxNewConnectionsPerIpPerSec: number;
  newConnectionsPerIpBurst: number;
}

/** One address: its open connections and its token bucket of new connections. */
interface Entry {
  open: number;
  readonly bucket: TokenBucket;
}

/** How often entries without connections whose bucket filled up again are dropped. */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * Connections by client address (see addressKey), and in all. One map entry per
 * address holds both its count and its rate, so a new connection costs one lookup.
 * An entry without connections whose bucket is full again is no different from a
 * new one and is dropped now and then: memory follows the addresses seen in the last
 * few seconds plus those with connections, not every address ever seen.
 */
export class AddressTable {
  private readonly entries = new Map<string, Entry>();
  private total = 0;
  private sweptAt: number;

  constructor(
    private readonly limits: AddressLimits,
    now = Date.now(),
  ) {
    this.sweptAt = now;
  }

  get connections(): number {
    return this.total;
  }

  get addresses(): number {
    return this.entries.size;
  }

  /** Whether one more connection from `key` fits the connection counts; takes nothing. */
  refusesOpen(key: string): Refusal | undefined {
    if (this.total >= this.limits.maxConnections) return 'connections';
    if ((this.entries.get(key)?.open ?? 0) >= this.limits.maxConnectionsPerIp) return 'connections-per-ip';
    return undefined;
  }

  /** Takes one new-connection token of `key`, if it has one. */
  takeToken(key: string, now = Date.now()): boolean {
    if (now - this.sweptAt >= SWEEP_INTERVAL_MS) this.sweep(now);
    return this.entry(key, now).bucket.take(now);
  }

  /** A connection from `key` was admitted; `leave` it once it ends. */
  enter(key: string, now = Date.now()): void {
    this.entry(key, now).open++;
    this.total++;
  }

  leave(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined || e.open === 0) return;
    e.open--;
    this.total--;
  }

  private entry(key: string, now: number): Entry {
    let e = this.entries.get(key);
    if (e === undefined) {
      e = { open: 0, bucket: new TokenBucket(this.limits.maxNewConnectionsPerIpPerSec, this.limits.newConnectionsPerIpBurst, now) };
      this.entries.set(key, e);
    }
    return e;
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [key, e] of this.entries) {
      if (e.open === 0 && e.bucket.isFull(now)) this.entries.delete(key);
    }
  }
}
