import type { PublishResult } from './publisher.ts';
import type { Subscriber } from './subscribers.ts';

/** What a group of subscribers got of a set of acknowledged publishes. */
export interface Delivery {
  /** Per subscriber that lacks some: which n. Empty when nothing is lost. */
  missing: Array<{ client: string; ns: number[] }>;
  /** Longest time from a publish's 200 to its arrival at a subscriber. */
  maxLatenessMs: number;
  duplicates: number;
}

export function delivery(subs: Subscriber[], acked: PublishResult[]): Delivery {
  const missing: Delivery['missing'] = [];
  let maxLatenessMs = 0;
  subs.forEach((s, i) => {
    const lacking = acked.filter((p) => !s.firstSeen.has(p.n)).map((p) => p.n);
    if (lacking.length > 0) missing.push({ client: `${s.transport} #${i}`, ns: lacking });
    for (const p of acked) {
      const at = s.firstSeen.get(p.n);
      if (at !== undefined) maxLatenessMs = Math.max(maxLatenessMs, at - p.answeredAt);
    }
  });
  return { missing, maxLatenessMs, duplicates: subs.reduce((sum, s) => sum + s.duplicates, 0) };
}

/** Waits until every subscriber has every acknowledged publish, or the time is up. */
export async function waitDelivered(subs: Subscriber[], acked: PublishResult[], timeoutMs: number): Promise<Delivery> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = delivery(subs, acked);
    if (d.missing.length === 0 || Date.now() > deadline) return d;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The longest a message took to reach a subscriber once it could: counted from its
 * 200, or from `sinceMs` (the new stream leader) for the ones acknowledged before.
 */
export function latenessSince(subs: Subscriber[], acked: PublishResult[], sinceMs: number): number {
  let worst = 0;
  for (const s of subs) {
    for (const p of acked) {
      const at = s.firstSeen.get(p.n);
      if (at !== undefined) worst = Math.max(worst, at - Math.max(p.answeredAt, sinceMs));
    }
  }
  return worst;
}

export function describeMissing(d: Delivery): string {
  return d.missing.map((m) => `${m.client} lacks ${m.ns.length} (${m.ns.slice(0, 8).join(', ')}${m.ns.length > 8 ? ', …' : ''})`).join('; ');
}
