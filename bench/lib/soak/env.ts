import { createHmac, randomBytes } from 'node:crypto';
import { nowMs, sleep } from '../util.ts';

/** What every soak client shares: where jetpull is, the key, and the phase of the run. */
export interface SoakEnv {
  host: string;
  port: number;
  key: string;
  /** The load is over: clients stop going away and stay connected until `finished`. */
  ending: boolean;
  /** Every client closes. */
  finished: boolean;
  /** Handshakes or polls that failed (503 and the like), by reason. */
  refusals: Record<string, number>;
}

export type Range = readonly [number, number];

/** `"5-60"` → [5, 60]; `"3"` → [3, 3]. */
export function parseRange(text: string, what: string): Range {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:-\s*(\d+(?:\.\d+)?))?\s*$/.exec(text);
  if (m === null) throw new Error(`--${what}: "${text}" is not <min>-<max> (seconds)`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo) throw new Error(`--${what}: ${hi} is below ${lo}`);
  return [lo, hi];
}

/** Milliseconds drawn uniformly from a range given in seconds. */
export function drawMs(r: Range): number {
  return (r[0] + Math.random() * (r[1] - r[0])) * 1000;
}

export function hmacHex(key: string, message: string): string {
  return createHmac('sha1', key).update(message).digest('hex');
}

export function hexId(): string {
  return randomBytes(16).toString('hex');
}

/** A user as the portal hands it out: a private and a public id, subscribed with one shared channel. */
export interface Identity {
  priv: string;
  pub: string;
  shared: string;
  /** `priv:pub.sig/shared.sig`, the CHANNEL_ID the official client connects with. */
  channelId: string;
}

export function newIdentity(key: string, shared: string): Identity {
  const priv = hexId();
  const pub = hexId();
  return { priv, pub, shared, channelId: `${priv}:${pub}.${hmacHex(key, `${priv}:${pub}`)}/${shared}.${hmacHex(key, shared)}` };
}

export function subPath(ws: boolean, id: Identity, binary: boolean, mid: string | undefined): string {
  return `/bitrix/${ws ? 'subws' : 'sub'}/?CHANNEL_ID=${id.channelId}${binary ? '&binaryMode=true' : ''}${mid === undefined ? '' : `&mid=${mid}`}&revision=19`;
}

export function countRefusal(env: SoakEnv, err: unknown): void {
  const text = err instanceof Error ? err.message : String(err);
  const reason = /HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? (/timed out/.test(text) ? 'timeout' : text.slice(0, 60));
  env.refusals[reason] = (env.refusals[reason] ?? 0) + 1;
}

/**
 * Sleeps `ms`, or less once `cut()` is true (checked every 250 ms): a sleeping
 * client wakes at once when the load ends.
 */
export async function nap(ms: number, cut: () => boolean): Promise<void> {
  const until = nowMs() + ms;
  while (!cut()) {
    const left = until - nowMs();
    if (left <= 0) return;
    await sleep(Math.min(250, left));
  }
}

/** A list with O(1) add, remove and random pick (open churn channels for the publisher). */
export class Bag<T> {
  private readonly items: T[] = [];
  private readonly at = new Map<T, number>();

  get size(): number {
    return this.items.length;
  }

  add(v: T): void {
    if (this.at.has(v)) return;
    this.at.set(v, this.items.length);
    this.items.push(v);
  }

  delete(v: T): void {
    const i = this.at.get(v);
    if (i === undefined) return;
    const last = this.items.pop()!;
    this.at.delete(v);
    if (i < this.items.length) {
      this.items[i] = last;
      this.at.set(last, i);
    }
  }

  pick(): T | undefined {
    return this.items.length === 0 ? undefined : this.items[Math.floor(Math.random() * this.items.length)];
  }
}
