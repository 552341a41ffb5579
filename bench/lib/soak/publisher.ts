import { runPaced, type PacedResult } from '../publish.ts';
import type { HttpPool } from '../raw-http.ts';
import { nowMs, sleep } from '../util.ts';
import type { Churn } from './churn.ts';
import type { Ledger } from './ledger.ts';
import type { CheckedWs } from './checked.ts';

/** Publishing as a portal's backend does: HTTP text to /bitrix/pub/, with Message-Expiry. */

const PAD = 'x'.repeat(1 << 20);

export function soakBody(n: number, seqs: Record<number, number>, bytes: number): string {
  const head = `{"module_id":"soak","command":"m","params":{"n":${n},"s":${JSON.stringify(seqs)},"pad":"`;
  return `${head}${PAD.slice(0, Math.max(0, bytes - head.length - 3))}"}}`;
}

function request(host: string, port: number, ids: readonly string[], body: string, expirySec: number): string {
  return (
    `POST /bitrix/pub/?CHANNEL_ID=${ids.join('/')} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: text/plain\r\n` +
    `Message-Expiry: ${expirySec}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export interface PublishCounts {
  acked: number;
  failed: number;
  statuses: Record<string, number>;
  firstError?: string;
}

function newCounts(): PublishCounts {
  return { acked: 0, failed: 0, statuses: {} };
}

/** One publish through the ledger: `n`'s status follows the answer. */
async function publishOne(pool: HttpPool, host: string, port: number, ledger: Ledger, chans: readonly number[], bodyBytes: number, expirySec: number, counts: PublishCounts): Promise<boolean> {
  const started = ledger.begin(chans, nowMs());
  if (started === undefined) return false;
  const body = soakBody(started.n, started.seqs, bodyBytes);
  let ok = false;
  try {
    const res = await pool.request(request(host, port, chans.map((c) => ledger.channels[c]!.id), body, expirySec));
    counts.statuses[res.status] = (counts.statuses[res.status] ?? 0) + 1;
    ok = res.status === 200;
    if (!ok) counts.firstError ??= `${res.status} ${res.body.toString('utf8').slice(0, 200)}`;
  } catch (err) {
    counts.firstError ??= String(err);
    counts.statuses.error = (counts.statuses.error ?? 0) + 1;
  }
  ledger.end(started.n, ok);
  if (ok) counts.acked++;
  else counts.failed++;
  return true;
}

export interface SteadyOptions {
  rate: number;
  bodyBytes: number;
  expirySec: number;
  /** Shares of the publishes: to a shared channel, to several private channels, to a churn user; the rest to one private channel. */
  sharedShare: number;
  multiShare: number;
  churnShare: number;
}

function pickDistinct(list: readonly number[], k: number): number[] {
  const out = new Set<number>();
  while (out.size < Math.min(k, list.length)) out.add(list[Math.floor(Math.random() * list.length)]!);
  return [...out];
}

/**
 * The steady load: `rate` publishes per second to checked private channels, shared
 * channels, several receivers at once (2–4 private channels, sometimes a shared one
 * too) and churn users. A publish whose channel is still busy with the previous one
 * picks other channels (three tries) or is skipped.
 */
export class SteadyPublisher {
  readonly counts = newCounts();
  readonly churnCounts = newCounts();
  skippedBusy = 0;
  multi = 0;
  result: PacedResult | undefined;

  constructor(
    private readonly pool: HttpPool,
    private readonly host: string,
    private readonly port: number,
    private readonly ledger: Ledger,
    private readonly targets: { privates: readonly number[]; multiPrivates: readonly number[]; shared: readonly number[] },
    private readonly churn: Churn,
    private readonly o: SteadyOptions,
  ) {}

  private pick(): readonly number[] | 'churn' {
    const r = Math.random();
    const t = this.targets;
    if (r < this.o.sharedShare) return pickDistinct(t.shared, 1);
    if (r < this.o.sharedShare + this.o.multiShare) {
      const chans = pickDistinct(t.multiPrivates, 2 + Math.floor(Math.random() * 3));
      if (Math.random() < 0.3) chans.push(...pickDistinct(t.shared, 1));
      return chans;
    }
    if (r < this.o.sharedShare + this.o.multiShare + this.o.churnShare) return 'churn';
    return pickDistinct(t.privates, 1);
  }

  private async fire(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const target = this.pick();
      if (target === 'churn') {
        const priv = this.churn.open.pick();
        if (priv === undefined) continue;
        await this.churnPublish(priv);
        return;
      }
      if (this.ledger.isBusy(target)) continue;
      if (target.length > 1) this.multi++;
      if (await publishOne(this.pool, this.host, this.port, this.ledger, target, this.o.bodyBytes, this.o.expirySec, this.counts)) return;
    }
    this.skippedBusy++;
  }

  private async churnPublish(priv: string): Promise<void> {
    const c = this.churnCounts;
    try {
      const res = await this.pool.request(request(this.host, this.port, [priv], soakBody(-1, {}, this.o.bodyBytes), this.o.expirySec));
      c.statuses[res.status] = (c.statuses[res.status] ?? 0) + 1;
      if (res.status === 200) c.acked++;
      else c.failed++;
    } catch (err) {
      c.failed++;
      c.firstError ??= String(err);
    }
  }

  async run(durationMs: number, deadline: number, stopped: () => boolean): Promise<void> {
    this.result = await runPaced({ rate: this.o.rate, durationMs, maxInFlight: 32, deadline, stop: stopped, tickMs: 20, fire: () => this.fire() });
  }
}

/**
 * Fills a paused slow reader: publishes of `bodyBytes` to its private channel, one
 * after the other, until `capBytes` are sent or the pause ends.
 */
export class SlowFiller {
  readonly counts = newCounts();
  bursts = 0;
  bytes = 0;

  constructor(
    private readonly pool: HttpPool,
    private readonly host: string,
    private readonly port: number,
    private readonly ledger: Ledger,
    private readonly bodyBytes: number,
    private readonly capBytes: number,
    private readonly expirySec: number,
  ) {}

  readonly burst = async (client: CheckedWs, stop: () => boolean): Promise<void> => {
    this.bursts++;
    const chan = client.tracker.chans[0]!;
    let sent = 0;
    while (!stop() && sent < this.capBytes) {
      if (!(await publishOne(this.pool, this.host, this.port, this.ledger, [chan], this.bodyBytes, this.expirySec, this.counts))) {
        await sleep(5);
        continue;
      }
      sent += this.bodyBytes;
    }
    this.bytes += sent;
  };
}
