import type { OptSpecs } from '../lib/cli.ts';
import type { Deployment } from '../lib/deploy.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { addressesFor, coalesceWindowMs, deploymentFor, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { fmtLatency } from '../lib/stats.ts';
import { fmtInt } from '../lib/util.ts';
import { runUnicastLoad, type UnicastLoadResult } from './unicast-load.ts';

export const UNICAST_OPTIONS: OptSpecs = {
  clients: { type: 'number', default: 5000, help: 'WebSocket subscribers on private channels (C)' },
  rate: { type: 'number', default: 1000, help: 'publishes per second, each to a random client (R)' },
  durationS: { type: 'number', default: 10, help: 'publishing time (T)' },
  maxInFlight: { type: 'number', default: 64, help: 'unacknowledged publishes at most (keep-alive connections)' },
  drainIdleS: { type: 'number', default: 5, help: 'stop waiting for deliveries after this long without progress' },
};

export async function measureUnicast(ctx: ScenarioContext, dep: Deployment, binary: boolean): Promise<UnicastLoadResult> {
  const o = ctx.opts;
  const clients = o.num('clients');
  if (dep.jetpullPid !== undefined) requireServerFds(dep.jetpullPid, 'jetpull', clients, o.num('maxInFlight') + 8);
  return runUnicastLoad(dep, {
    label: binary ? 'binary unicast' : 'unicast',
    clients,
    rate: o.num('rate'),
    durationMs: o.num('durationS') * 1000,
    maxInFlight: o.num('maxInFlight'),
    connectConcurrency: o.num('connectConcurrency'),
    connectTimeoutMs: o.num('connectTimeoutS') * 1000,
    addresses: addressesFor(ctx, clients),
    bodyBytes: o.num('bodyBytes'),
    binary,
    coalesceMs: coalesceWindowMs(ctx),
    drainIdleMs: o.num('drainIdleS') * 1000,
    deadline: ctx.deadline,
  });
}

export function unicastJson(r: UnicastLoadResult): Record<string, unknown> {
  const { window, ...rest } = r;
  return { ...rest, ...windowJson(window) };
}

export function unicastRows(label: string, r: UnicastLoadResult, coalesceMs: number): TableRow[] {
  return [
    [`${label} rate`, `${r.achievedRate}/s achieved of ${r.targetRate}/s (${fmtInt(r.acked)} acked, errors ${r.publishErrors}, max backlog ${r.maxBacklog})`],
    [`${label} latency`, fmtLatency(r.latencyMs)],
    [`${label} latency, not coalescable`, `${fmtLatency(r.latencyNotCoalescableMs)} (${Math.round(r.coalescableShare * 1000) / 10}% of messages may have waited for a ${coalesceMs} ms coalescing window)`],
    [`${label} lost / dup / misrouted`, `${r.lost} / ${r.duplicated} / ${r.misrouted}${r.unexpected ? ` (unexpected ${r.unexpected})` : ''}${r.closedDuringRun ? ` (closed ${r.closedDuringRun})` : ''}`],
    [`${label} frames`, `${fmtInt(r.framesReceived)} (${r.messagesPerFrame} msgs/frame)`],
    [`${label} publish ack`, fmtLatency(r.publishAckMs)],
    [`${label} connect`, `${r.connectS} s (retries ${r.connectRetries}, 503 busy ${r.connectRefused503})`],
    cpuRow(label, r.window),
  ];
}

export function unicastProblems(label: string, r: UnicastLoadResult): string[] {
  const p: string[] = [];
  if (r.lost > 0) p.push(`${label}: ${r.lost} messages lost`);
  if (r.duplicated > 0) p.push(`${label}: ${r.duplicated} duplicates`);
  if (r.misrouted > 0) p.push(`${label}: ${r.misrouted} messages delivered to the wrong client`);
  if (r.unexpected > 0) p.push(`${label}: ${r.unexpected} unexpected messages`);
  if (r.publishErrors > 0) p.push(`${label}: ${r.publishErrors} publish errors (${r.publishFirstError ?? ''})`);
  if (r.closedDuringRun > 0) p.push(`${label}: ${r.closedDuringRun} connections closed during the run`);
  if (r.achievedRate < r.targetRate * 0.95) p.push(`${label}: achieved ${r.achievedRate}/s of ${r.targetRate}/s`);
  if (r.stoppedBy !== 'done') p.push(`${label}: stopped waiting (${r.stoppedBy}) before every delivery arrived`);
  return p;
}

export const unicastScenario: Scenario = {
  name: 'unicast',
  summary: 'C subscribers on private channels, R publishes/s to random channels for T s: latency, rate, losses',
  options: UNICAST_OPTIONS,
  async run(ctx): Promise<ScenarioOutcome> {
    const clients = ctx.opts.num('clients');
    requireFds(clients, ctx.opts.num('maxInFlight') + 8, 'unicast');
    const dep = await deploymentFor(ctx);
    try {
      const r = await measureUnicast(ctx, dep, false);
      const logCounts = dep.logCounts();
      await dep.stop();
      const problems = unicastProblems('unicast', r);
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
      return {
        params: { ...ctx.opts.all(), serverCoalesceWindowMs: coalesceWindowMs(ctx) },
        results: { ...unicastJson(r), serverLogLines: logCounts },
        window: r.window,
        windows: [{ label: 'unicast', window: r.window }],
        table: unicastRows('unicast', r, coalesceWindowMs(ctx)),
        problems,
        serverLog: dep.logFile,
      };
    } finally {
      await dep.stop();
    }
  },
};
