import type { Options } from '../cli.ts';
import type { WindowStats } from '../proc.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../report.ts';
import { fmtInt, round } from '../util.ts';
import type { CheckedLp, CheckedWs } from './checked.ts';
import type { Churn } from './churn.ts';
import type { SoakEnv } from './env.ts';
import type { Flooder, Sink } from './flood.ts';
import type { Ledger, Tracker } from './ledger.ts';
import type { SlowFiller, SteadyPublisher } from './publisher.ts';
import { trendOf, type SoakSample, type SoakSampler, type Trend } from './sampler.ts';

export interface SoakRun {
  params: Record<string, unknown>;
  o: Options;
  loadMs: number;
  before: SoakSample;
  after: SoakSample;
  sampler: SoakSampler;
  ledger: Ledger;
  trackers: readonly Tracker[];
  sleepers: readonly CheckedWs[];
  lps: readonly CheckedLp[];
  slow: readonly CheckedWs[];
  churn: Churn;
  sinks: readonly Sink[];
  flooder: Flooder | undefined;
  floodDrained: boolean;
  steady: SteadyPublisher;
  filler: SlowFiller;
  env: SoakEnv;
  settleS: number;
  exited: string | undefined;
  logCounts: { warn: number; error: number; fatal: number };
  logFile: string | undefined;
  loadWindow: WindowStats;
  snapshots: string[];
}

function addCodes(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  return into;
}

const fmtTrend = (t: Trend, unit: string): string =>
  `first ${t.firstWindowAvg} → after warm-up ${t.afterWarmupAvg} → last ${t.lastWindowAvg} ${unit} (${t.growthPct === null ? '—' : `${t.growthPct > 0 ? '+' : ''}${t.growthPct}%`}), slope ${t.slopePer10Min} ${unit}/10 min after warm-up, max ${t.max}`;

/** The soak's results, table and problems from what the run recorded. */
export function soakOutcome(r: SoakRun): ScenarioOutcome {
  const loadS = r.loadMs / 1000;
  const warmupS = Math.min(r.o.num('warmupMin') * 60, loadS / 3);
  const windowS = Math.min(r.o.num('windowMin') * 60, loadS / 3);
  const samples = r.sampler.samples;
  const trend = (pick: (s: SoakSample) => number | null): Trend => trendOf(samples, pick, warmupS, windowS, loadS);
  const memory = {
    rssMiB: trend((s) => s.rssMiB),
    heapUsedMiB: trend((s) => s.heapUsedMiB),
    heapTotalMiB: trend((s) => s.heapTotalMiB),
    externalMiB: trend((s) => s.externalMiB),
    natsRssMiB: trend((s) => s.natsRssMiB),
  };
  const fds = {
    beforeLoad: r.before.fds,
    afterLoad: r.after.fds,
    during: trend((s) => s.fds),
    // jetpull's descriptors less the load generator's own growth (its sockets to jetpull): what jetpull holds besides its clients.
    besidesClients: trend((s) => s.fds - (s.loadgenFds - r.before.loadgenFds)),
    connections: trend((s) => s.connections),
  };

  const gcFigures = (x: SoakSample): Record<string, number | null> => ({ heapUsedMiB: x.heapUsedMiB, externalMiB: x.externalMiB, rssMiB: x.rssMiB, fds: x.fds });
  const retained = round((r.after.heapUsedMiB ?? 0) + (r.after.externalMiB ?? 0) - (r.before.heapUsedMiB ?? 0) - (r.before.externalMiB ?? 0), 2);
  const afterFullGc = { before: gcFigures(r.before), after: gcFigures(r.after), retainedMiB: retained, snapshots: r.snapshots };

  let lost = 0;
  let expected = 0;
  const lostExamples: string[] = [];
  const sum = { messages: 0, duplicates: 0, outOfOrder: 0, midRegressions: 0, misrouted: 0, foreign: 0, connections: 0, resumes: 0 };
  for (const t of r.trackers) {
    const m = r.ledger.missing(t);
    expected += m.expected;
    lost += m.lost.length;
    for (const n of m.lost.slice(0, 2)) if (lostExamples.length < 6) lostExamples.push(`${t.name}: ${r.ledger.describe(n)}`);
    for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += t[k];
  }
  const firstProblems = r.trackers.flatMap((t) => t.firstProblems).slice(0, 10);
  const parseErrors = [...r.sleepers, ...r.slow, ...r.lps].reduce((n, c) => n + c.errors.parse, 0) + r.churn.parseErrors + r.sinks.reduce((n, s) => n + s.parseErrors, 0);
  const sleeperCloses = r.sleepers.reduce((a, c) => addCodes(a, c.serverCloses), {} as Record<string, number>);
  const slowCloses = r.slow.reduce((a, c) => addCodes(a, c.serverCloses), {} as Record<string, number>);
  const lpStatuses = r.lps.reduce((a, c) => addCodes(a, c.statuses), {} as Record<string, number>);
  const f = r.flooder;
  const sinks = r.sinks.map((s) => ({ binary: s.binary, received: s.flood.received, duplicates: s.flood.duplicates, other: s.other, serverCloses: s.serverCloses, ...(f?.missingAt(s) ?? { lost: 0, uncertain: 0 }) }));
  const floodLost = sinks.reduce((n, s) => n + s.lost, 0);
  const floodDups = sinks.reduce((n, s) => n + s.duplicates, 0);
  const published = r.ledger.counts();
  const steady = r.steady;
  const judged = loadS >= 600;
  const maxGrowth = r.o.num('maxGrowthPct');

  const results = {
    loadMinutes: round(loadS / 60, 2),
    warmupS,
    windowS,
    settleS: round(r.settleS, 1),
    processExit: r.exited ?? null,
    memory,
    afterFullGc,
    fds,
    checked: {
      clients: r.trackers.length,
      sleepers: r.sleepers.length,
      longPolls: r.lps.length,
      slowReaders: r.slow.length,
      expected,
      lost,
      ...sum,
      parseErrors,
      lostExamples,
      firstProblems,
      sleeperLeaves: r.sleepers.reduce((n, c) => n + c.leaves, 0),
      sleeperServerCloses: sleeperCloses,
      longPollSleeps: r.lps.reduce((n, c) => n + c.sleeps, 0),
      longPollStatuses: lpStatuses,
    },
    slowReaders: {
      pauses: r.slow.reduce((n, c) => n + c.pauses, 0),
      serverCloses: slowCloses,
      bursts: r.filler.bursts,
      burstMiB: round(r.filler.bytes / 1024 / 1024, 1),
      burstPublishes: r.filler.counts,
    },
    flood: f === undefined ? null : {
      requests: f.requests,
      messages: f.messagesSent,
      channelStatsSent: f.statsSent,
      channelStatsAnswered: f.statsAnswered,
      connections: f.connections,
      serverCloses: f.serverCloses,
      drained: r.floodDrained,
      sinks,
      requestsPerSec: round(f.requests / loadS, 1),
    },
    churn: { wsConnects: r.churn.wsConnects, longPolls: r.churn.lpPolls, messages: r.churn.messages, failures: r.churn.failures },
    publishes: {
      checked: published,
      steady: steady.counts,
      steadyAchievedRate: round(steady.result?.achievedRate ?? 0, 1),
      multiReceiver: steady.multi,
      skippedBusy: steady.skippedBusy,
      toChurn: steady.churnCounts,
    },
    refusals: r.env.refusals,
    serverCounters: { slowClientDisconnects: r.sampler.counter('slowClients'), clientRequestsLimited: r.sampler.counter('limited') },
    serverLogLines: r.logCounts,
    load: windowJson(r.loadWindow),
    samples,
  };

  const problems: string[] = [];
  if (r.exited !== undefined) problems.push(`soak: ${r.exited}`);
  if (lost > 0) problems.push(`soak: ${lost} of ${expected} messages not received by checked clients (${lostExamples.join('; ')})`);
  if (sum.duplicates > 0) problems.push(`soak: ${sum.duplicates} duplicates (${firstProblems.join('; ')})`);
  if (sum.outOfOrder > 0) problems.push(`soak: ${sum.outOfOrder} messages out of order in their channel`);
  if (sum.midRegressions > 0) problems.push(`soak: ${sum.midRegressions} mids not increasing on a connection`);
  if (sum.misrouted + sum.foreign > 0) problems.push(`soak: ${sum.misrouted} misrouted, ${sum.foreign} unexpected messages at checked clients`);
  if (parseErrors > 0) problems.push(`soak: ${parseErrors} frames that did not parse`);
  if (floodLost + floodDups > 0) problems.push(`soak: flood ${floodLost} lost, ${floodDups} duplicated at the sinks`);
  if (f !== undefined && !r.floodDrained) problems.push('soak: the flooder\'s last requests were not answered within 30 s');
  if (steady.counts.failed > 0.01 * Math.max(1, steady.counts.acked)) problems.push(`soak: ${steady.counts.failed} steady publishes failed (${steady.counts.firstError ?? ''})`);
  // The server counts its 4008s; a paused reader mostly sees 1006, the socket dropped a second after the close frame it could not read.
  const slowClosed = r.sampler.counter('slowClients') ?? 0;
  if (r.slow.length > 0 && slowClosed === 0) problems.push('soak: no slow reader was closed for its outbox (4008): the bound was not exercised');
  if (retained > r.o.num('maxRetainedMib')) problems.push(`soak: after a full collection jetpull holds ${retained} MiB more heap and external memory than before the load`);
  if (fds.afterLoad - fds.beforeLoad > 10) problems.push(`soak: jetpull holds ${fds.afterLoad} descriptors after the load, ${fds.beforeLoad} before it`);
  if (judged) {
    for (const [name, t] of [['RSS', memory.rssMiB], ['heap used', memory.heapUsedMiB]] as const) {
      if (t.growthPct !== null && t.growthPct > maxGrowth) problems.push(`soak: jetpull ${name} grew ${t.growthPct}% after the warm-up (slope ${t.slopePer10Min} MiB/10 min)`);
    }
    const b = fds.besidesClients;
    if (b.afterWarmupAvg !== null && b.lastWindowAvg !== null && b.lastWindowAvg - b.afterWarmupAvg > 10) problems.push(`soak: jetpull's descriptors besides its clients grew from ${b.afterWarmupAvg} to ${b.lastWindowAvg}`);
  }
  if (r.logCounts.error + r.logCounts.fatal > 0) problems.push(`jetpull logged ${r.logCounts.error} errors, ${r.logCounts.fatal} fatal (${r.logFile})`);

  const codes = (c: Record<string, number>): string => Object.entries(c).map(([k, v]) => `${k}×${v}`).join(' ') || 'none';
  const table: TableRow[] = [
    ['load', `${round(loadS / 60, 1)} min; warm-up ${round(warmupS / 60, 1)} min, windows of ${round(windowS / 60, 1)} min; settle ${round(r.settleS, 1)} s`],
    ['checked clients', `${r.sleepers.length} sleepers, ${r.lps.length} long polls, ${r.slow.length} slow readers: ${fmtInt(sum.connections)} connections/polls, ${fmtInt(sum.resumes)} by mid`],
    ['expected / lost / dup', `${fmtInt(expected)} / ${lost} / ${sum.duplicates}`],
    ['out of order / mid back / misrouted', `${sum.outOfOrder} / ${sum.midRegressions} / ${sum.misrouted + sum.foreign}`],
    ['server closes (sleepers)', codes(sleeperCloses)],
    ['slow readers', `${results.slowReaders.pauses} pauses, ${results.slowReaders.burstMiB} MiB sent into them; server's 4008s ${slowClosed}; closes seen ${codes(slowCloses)}`],
    ['flood', f === undefined ? 'off' : `${fmtInt(f.requests)} requests (${results.flood!.requestsPerSec}/s), ${fmtInt(f.messagesSent)} messages; sinks lost ${floodLost}, dup ${floodDups}, uncertain ${sinks.reduce((n, s) => n + s.uncertain, 0)}; closes ${codes(f.serverCloses)}`],
    ['churn', `${fmtInt(r.churn.wsConnects)} WebSocket connections, ${fmtInt(r.churn.lpPolls)} long polls, ${fmtInt(r.churn.messages)} messages`],
    ['publishes', `${fmtInt(published.acked)} checked acked, ${published.failed} failed; steady ${results.publishes.steadyAchievedRate}/s (${steady.multi} multi-receiver, ${steady.skippedBusy} skipped), ${fmtInt(steady.churnCounts.acked)} to churn users`],
    ['jetpull RSS', fmtTrend(memory.rssMiB, 'MiB')],
    ['jetpull heap used', fmtTrend(memory.heapUsedMiB, 'MiB')],
    ['after a full GC', `heap ${r.before.heapUsedMiB} → ${r.after.heapUsedMiB} MiB, external ${r.before.externalMiB} → ${r.after.externalMiB} MiB, RSS ${r.before.rssMiB} → ${r.after.rssMiB} MiB (before the load → after it)`],
    ['jetpull fds', `before ${fds.beforeLoad}, during ${fmtTrend(fds.during, '')}, after ${fds.afterLoad}`],
    ['fds besides clients', fmtTrend(fds.besidesClients, '')],
    ['nats-server RSS', fmtTrend(memory.natsRssMiB, 'MiB')],
    cpuRow('load', r.loadWindow),
    ['verdict', problems.length === 0 ? (judged ? 'clean' : 'clean (memory not judged: under 10 min)') : `${problems.length} problem(s)`],
  ];
  return { params: r.params, results, window: r.loadWindow, windows: [{ label: 'soak', window: r.loadWindow }], table, problems, serverLog: r.logFile };
}
