import { createInbox, type NatsConnection, type Subscription } from '@nats-io/transport-node';

const MIDS_PREFIX = new TextEncoder().encode('{"mids":');

/**
 * Request/reply over one reply subscription, for the load generator: the client's
 * `request()` costs a timer, an inbox registration and a promise chain per call, and
 * made the load generator the bottleneck of the NATS publish path. Replies are
 * matched by the last token of their subject; a sweep fails what is overdue.
 */
export class NatsRequester {
  private readonly prefix = createInbox('_INBOX.bench');
  private readonly sub: Subscription;
  private readonly pending = new Map<number, { resolve(reply: Uint8Array): void; reject(err: Error): void; deadline: number }>();
  private next = 0;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const id = Number(msg.subject.slice(this.prefix.length + 1));
        const p = this.pending.get(id);
        if (p === undefined) return;
        this.pending.delete(id);
        p.resolve(msg.data);
      },
    });
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.pending) {
        if (p.deadline > now) continue;
        this.pending.delete(id);
        p.reject(new Error('request timed out'));
      }
    }, 100);
  }

  request(subject: string, payload: Uint8Array): Promise<Uint8Array> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      this.nc.publish(subject, payload, { reply: `${this.prefix}.${id}` });
    });
  }

  close(): void {
    clearInterval(this.sweep);
    this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(new Error('closed'));
    this.pending.clear();
  }
}

/** True when a push.publish reply lists mids (an error reply starts with `{"error":`). */
export function isMidsReply(reply: Uint8Array): boolean {
  if (reply.length < MIDS_PREFIX.length) return false;
  for (let i = 0; i < MIDS_PREFIX.length; i++) if (reply[i] !== MIDS_PREFIX[i]) return false;
  return true;
}

/** True when a push.publish batch reply lists mids for every one of its `count` messages. */
export function isBatchStored(reply: Uint8Array, count: number): boolean {
  let parsed: { results?: Array<{ mids?: unknown }> };
  try {
    parsed = JSON.parse(new TextDecoder().decode(reply)) as typeof parsed;
  } catch {
    return false;
  }
  return Array.isArray(parsed.results) && parsed.results.length === count && parsed.results.every((r) => Array.isArray(r.mids));
}
