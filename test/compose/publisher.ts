/**
 * The portal's side: text publishes to /bitrix/pub/ (protocol §5.1) with a
 * Message-Expiry, so every acknowledged message is stored and replayable by mid. Each
 * body carries a number `n`, unique in the run, that subscribers report back.
 */

export interface PublishResult {
  n: number;
  status: number;
  sentAt: number;
  answeredAt: number;
  error?: string;
}

let nextN = 1;

export function body(n: number): string {
  return JSON.stringify({ module_id: 'e2e', command: 'tick', params: { n } });
}

/** One publish to the private ids `channels`; status 0 when no HTTP answer came. */
export async function publish(publishUrl: string, channels: string[], opts: { expirySec?: number; timeoutMs?: number } = {}): Promise<PublishResult> {
  const n = nextN++;
  const sentAt = Date.now();
  try {
    const res = await fetch(`${publishUrl}/bitrix/pub/?CHANNEL_ID=${channels.join('/')}`, {
      method: 'POST',
      body: body(n),
      headers: { 'Message-Expiry': String(opts.expirySec ?? 600) },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
    await res.arrayBuffer();
    return { n, status: res.status, sentAt, answeredAt: Date.now() };
  } catch (err) {
    return { n, status: 0, sentAt, answeredAt: Date.now(), error: String((err as Error).cause ?? err) };
  }
}

/**
 * Starts a publish every `intervalMs` until stopped, without waiting for the previous
 * answers (at most `maxInFlight` open), as a busy portal does: a stall shows as many
 * slow answers, not as a gap in what was sent.
 */
export class PublishLoop {
  readonly results: PublishResult[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly publishUrl: string,
    private readonly channels: string[],
    private readonly intervalMs = 100,
    private readonly maxInFlight = 50,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.inFlight.size >= this.maxInFlight) return;
      const p = publish(this.publishUrl, this.channels).then((r) => {
        this.results.push(r);
        this.inFlight.delete(p);
      });
      this.inFlight.add(p);
    }, this.intervalMs);
  }

  /** Stops sending and waits for the open publishes' answers. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inFlight]);
  }

  /** The publishes that got 200: the ones that must reach every subscriber. */
  acked(): PublishResult[] {
    return this.results.filter((r) => r.status === 200);
  }
}
