import { readdirSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { openFdCount, procCpuMs, procRssKiB } from '../proc.ts';
import { nowMs, round, sleep } from '../util.ts';

/**
 * Samples of the jetpull process over a long run: RSS and open descriptors from
 * /proc/<pid>, heap and connection figures from its admin /metrics, nats-server's RSS,
 * and the load generator's own descriptors (its sockets to jetpull are most of them,
 * so jetpull's count less the load generator's growth is what jetpull holds on its own).
 */

export interface SoakSample {
  /** Seconds since the load started (negative: before). */
  t: number;
  rssMiB: number;
  fds: number;
  heapUsedMiB: number | null;
  heapTotalMiB: number | null;
  externalMiB: number | null;
  connections: number | null;
  natsRssMiB: number | null;
  loadgenFds: number;
  jetpullCpuPct: number | null;
  natsCpuPct: number | null;
  /** Taken right after a full garbage collection (the heap snapshot forces one). */
  afterFullGc?: true;
}

const METRICS = {
  heapUsed: 'jetpull_nodejs_heap_size_used_bytes',
  heapTotal: 'jetpull_nodejs_heap_size_total_bytes',
  external: 'jetpull_nodejs_external_memory_bytes',
  connections: 'jetpull_connections',
  slowClients: 'jetpull_slow_client_disconnects_total',
  limited: 'jetpull_client_requests_limited_total',
} as const;

/** Prometheus text → the sum over labels of each metric named in METRICS. */
function parseMetrics(text: string): Record<string, number> {
  const wanted = new Set<string>(Object.values(METRICS));
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (name === undefined || !wanted.has(name)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) out[name] = (out[name] ?? 0) + value;
  }
  return out;
}

export function fetchMetrics(port: number): Promise<Record<string, number> | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? parseMetrics(Buffer.concat(chunks).toString('utf8')) : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

const mib = (bytes: number | undefined): number | null => (bytes === undefined ? null : round(bytes / 1024 / 1024, 2));

export class SoakSampler {
  readonly samples: SoakSample[] = [];
  private last: { at: number; jp: number; nats: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  lastMetrics: Record<string, number> = {};

  constructor(
    private readonly jetpullPid: number,
    private readonly natsPid: number | undefined,
    private readonly adminPort: number,
    /** When the load started (nowMs clock): sample times count from it. */
    public t0: number,
  ) {}

  async sample(): Promise<SoakSample> {
    const at = nowMs();
    const jp = procCpuMs(this.jetpullPid) ?? 0;
    const nats = this.natsPid === undefined ? 0 : (procCpuMs(this.natsPid) ?? 0);
    const prev = this.last;
    this.last = { at, jp, nats };
    const m = (await fetchMetrics(this.adminPort)) ?? {};
    this.lastMetrics = m;
    const natsRss = this.natsPid === undefined ? undefined : procRssKiB(this.natsPid);
    const s: SoakSample = {
      t: round((at - this.t0) / 1000, 1),
      rssMiB: round((procRssKiB(this.jetpullPid) ?? 0) / 1024, 2),
      fds: openFdCount(this.jetpullPid),
      heapUsedMiB: mib(m[METRICS.heapUsed]),
      heapTotalMiB: mib(m[METRICS.heapTotal]),
      externalMiB: mib(m[METRICS.external]),
      connections: m[METRICS.connections] ?? null,
      natsRssMiB: natsRss === undefined ? null : round(natsRss / 1024, 2),
      loadgenFds: openFdCount('self'),
      jetpullCpuPct: prev === undefined ? null : round(((jp - prev.jp) / (at - prev.at)) * 100, 1),
      natsCpuPct: prev === undefined ? null : round(((nats - prev.nats) / (at - prev.at)) * 100, 1),
    };
    this.samples.push(s);
    return s;
  }

  start(intervalMs: number, onSample: (s: SoakSample) => void): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(async () => onSample(await this.sample()));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * A sample after a full garbage collection: jetpull runs with
   * --heapsnapshot-signal=SIGUSR2, and a heap snapshot collects garbage first, so
   * what the heap and external memory hold then is what is still reachable. The
   * snapshot is written to `dir` (kept when `keep`, else removed).
   */
  async sampleAfterFullGc(dir: string, keep: boolean): Promise<{ sample: SoakSample; snapshot: string | undefined }> {
    const before = new Set(readdirSync(dir));
    process.kill(this.jetpullPid, 'SIGUSR2');
    const by = nowMs() + 120_000;
    let file: string | undefined;
    let size = -1;
    // The snapshot is written on jetpull's main thread: done once the file stops growing and /metrics answers again.
    while (nowMs() < by) {
      await sleep(500);
      file ??= readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
      if (file === undefined) continue;
      const now = statSync(join(dir, file)).size;
      if (now === size && (await fetchMetrics(this.adminPort)) !== undefined) break;
      size = now;
    }
    const sample = { ...(await this.sample()), afterFullGc: true as const };
    this.samples[this.samples.length - 1] = sample;
    if (file !== undefined && !keep) rmSync(join(dir, file), { force: true });
    return { sample, snapshot: file === undefined || !keep ? undefined : join(dir, file) };
  }

  /** A counter from the last /metrics read. */
  counter(name: keyof typeof METRICS): number | null {
    return this.lastMetrics[METRICS[name]] ?? null;
  }
}

export interface Trend {
  /** Average over the first window of the load (warm-up included). */
  firstWindowAvg: number | null;
  /** Average over the first window after the warm-up. */
  afterWarmupAvg: number | null;
  lastWindowAvg: number | null;
  /** Last window against the one after the warm-up, %. */
  growthPct: number | null;
  /** Least-squares slope over the samples after the warm-up, per 10 minutes. */
  slopePer10Min: number | null;
  max: number | null;
}

function avg(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The trend of one figure over the load (samples with t in [0, endS]). */
export function trendOf(samples: readonly SoakSample[], pick: (s: SoakSample) => number | null, warmupS: number, windowS: number, endS: number): Trend {
  const pts: Array<[number, number]> = [];
  for (const s of samples) {
    const v = pick(s);
    if (v !== null && s.t >= 0 && s.t <= endS) pts.push([s.t, v]);
  }
  const inRange = (lo: number, hi: number): number[] => pts.filter(([t]) => t >= lo && t < hi).map(([, v]) => v);
  const first = avg(inRange(0, windowS));
  const after = avg(inRange(warmupS, warmupS + windowS));
  const last = avg(inRange(endS - windowS, endS + 1));
  const fit = pts.filter(([t]) => t >= warmupS);
  let slope: number | null = null;
  if (fit.length >= 3) {
    const mt = avg(fit.map(([t]) => t))!;
    const mv = avg(fit.map(([, v]) => v))!;
    let num = 0;
    let den = 0;
    for (const [t, v] of fit) {
      num += (t - mt) * (v - mv);
      den += (t - mt) ** 2;
    }
    slope = den > 0 ? (num / den) * 600 : null;
  }
  const r = (x: number | null, d = 2): number | null => (x === null ? null : round(x, d));
  return {
    firstWindowAvg: r(first),
    afterWarmupAvg: r(after),
    lastWindowAvg: r(last),
    growthPct: after !== null && last !== null && after > 0 ? r(((last - after) / after) * 100, 1) : null,
    slopePer10Min: r(slope, 3),
    max: pts.length === 0 ? null : r(Math.max(...pts.map(([, v]) => v))),
  };
}
