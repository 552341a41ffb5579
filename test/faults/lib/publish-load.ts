import type { Rng } from './rng.ts';

/**
 * The backend: text publishes through the publisher's `/bitrix/pub/` with
 * `Message-Expiry: 3600`, a unique body each. A 503, a failed connection or no
 * answer in time is retried with the same `Idempotency-Key` until a `200` or the deadline; only a
 * `200` makes a message acknowledged. Every publish is recorded (send time, ack
 * time, channels, attempts).
 */

export interface PublishRec {
  n: number;
  /** Channel ids of CHANNEL_ID. */
  channels: string[];
  bytes: number;
  /** What it is for: the steady load, or a burst of a phase. */
  purpose: string;
  sentAt: number;
  ackAt: number | undefined;
  attempts: number;
  /** Statuses (or error names) of the attempts that were not 200, counted. */
  refusals: Record<string, number>;
  /** Gave up at the deadline without a 200. */
  failed: boolean;
}

export interface LoadOptions {
  /** Publishes per second of the steady load. */
  rate: number;
  /** How long a publish is retried before it counts as failed. */
  retryDeadlineMs: number;
  bodyBytes: number;
}

/** Who the steady load addresses: the shared channel, one private channel, or two receivers. */
export interface Audience {
  shared: string;
  privates: readonly string[];
}

export class PublishLoad {
  readonly history: PublishRec[] = [];
  private nextN = 1;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private rate: number;

  constructor(
    private readonly publisherBase: () => string,
    private readonly audience: Audience,
    private readonly rng: Rng,
    private readonly opts: LoadOptions,
    private readonly runId: string,
  ) {
    this.rate = opts.rate;
  }

  get acked(): number {
    let n = 0;
    for (const p of this.history) if (p.ackAt !== undefined) n++;
    return n;
  }

  /** Last acknowledgement time, or undefined. */
  lastAckAt(): number | undefined {
    let t: number | undefined;
    for (const p of this.history) if (p.ackAt !== undefined && (t === undefined || p.ackAt > t)) t = p.ackAt;
    return t;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stops the steady load; in-flight publishes go on (see `settle`). */
  pause(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  setRate(rate: number): void {
    this.rate = rate;
  }

  resetRate(): void {
    this.rate = this.opts.rate;
  }

  /** Waits until every publish started so far got its 200 or gave up. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private schedule(): void {
    if (!this.running) return;
    // Poisson-ish spacing around the rate, so publishes do not all land on timer ticks.
    const gap = (1000 / this.rate) * this.rng.between(0.5, 1.5);
    this.timer = setTimeout(() => {
      this.publishOne(this.pickChannels(), 'load', this.opts.bodyBytes);
      this.schedule();
    }, gap);
  }

  private pickChannels(): string[] {
    const { shared, privates } = this.audience;
    const r = this.rng.next();
    if (r < 0.3 || privates.length === 0) return [shared];
    const a = this.rng.pick(privates);
    if (r < 0.7) return [a];
    if (r < 0.85) return [a, shared];
    let b = this.rng.pick(privates);
    if (b === a && privates.length > 1) b = privates[(privates.indexOf(a) + 1) % privates.length]!;
    return [a, b];
  }

  /** Starts one publish; resolves when it is acknowledged or gave up. */
  publishOne(channels: string[], purpose: string, bodyBytes: number): Promise<PublishRec> {
    const n = this.nextN++;
    const head = `{"module_id":"fault","command":"m","params":{"n":${n},"pad":"`;
    const tail = '"}}';
    const body = head + 'x'.repeat(Math.max(0, bodyBytes - head.length - tail.length)) + tail;
    const rec: PublishRec = { n, channels, bytes: body.length, purpose, sentAt: Date.now(), ackAt: undefined, attempts: 0, refusals: {}, failed: false };
    this.history.push(rec);
    const p = this.deliver(rec, body);
    const tracked = p.then(() => undefined);
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return p.then(() => rec);
  }

  /** `count` publishes to `channels`, at most `concurrency` at a time; resolves when all are settled. */
  async burst(count: number, channels: string[], bodyBytes: number, purpose: string, concurrency = 8, between?: (i: number) => void): Promise<PublishRec[]> {
    const out: PublishRec[] = [];
    let i = 0;
    const worker = async (): Promise<void> => {
      while (i < count) {
        const k = i++;
        between?.(k);
        out.push(await this.publishOne(channels, purpose, bodyBytes));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
    return out;
  }

  private async deliver(rec: PublishRec, body: string): Promise<void> {
    const deadline = rec.sentAt + this.opts.retryDeadlineMs;
    const url = `${this.publisherBase()}/bitrix/pub/?CHANNEL_ID=${rec.channels.join('/')}`;
    for (;;) {
      rec.attempts++;
      let outcome: string;
      try {
        const res = await fetch(url, {
          method: 'POST',
          body,
          headers: { 'Message-Expiry': '3600', 'Idempotency-Key': `${this.runId}-${rec.n}` },
          signal: AbortSignal.timeout(Math.max(1_000, Math.min(15_000, deadline - Date.now()))),
        });
        await res.arrayBuffer();
        if (res.status === 200) {
          rec.ackAt = Date.now();
          return;
        }
        outcome = String(res.status);
        if (res.status !== 503) {
          // Only a 503 says "try again"; anything else is the answer (recorded, not retried).
          rec.refusals[outcome] = (rec.refusals[outcome] ?? 0) + 1;
          rec.failed = true;
          return;
        }
      } catch (err) {
        outcome = (err as Error).name === 'TimeoutError' ? 'timeout' : 'connection error';
      }
      rec.refusals[outcome] = (rec.refusals[outcome] ?? 0) + 1;
      if (Date.now() + 250 >= deadline) {
        rec.failed = true;
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
