import type { OptSpecs } from '../lib/cli.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { measureOnNchan } from '../lib/nchan.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { addressesFor, coalesceWindowMs, deploymentFor, NCHAN_OPTIONS, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { fmtLatency } from '../lib/stats.ts';
import { jetpullTarget, nchanTarget, type PushTarget } from '../lib/targets.ts';
import { fmtInt, round } from '../lib/util.ts';
import { measureStoreFloor, type StoreFloorResult } from '../lib/store-floor.ts';
import { runUnicastLoad, type UnicastLoadResult } from './unicast-load.ts';

export const UNICAST_OPTIONS: OptSpecs = {
  clients: { type: 'number', default: 5000, help: 'WebSocket subscribers on private channels (C)' },
  rate: { type: 'number', default: 1000, help: 'publishes per second, each to a random client (R)' },
  durationS: { type: 'number', default: 10, help: 'publishing time (T)' },
  maxInFlight: { type: 'number', default: 64, help: 'unacknowledged publishes at most (keep-alive connections)' },
  drainIdleS: { type: 'number', default: 5, help: 'stop waiting for deliveries after this long without progress' },
  storeFloor: { type: 'boolean', default: true, help: "after jetpull's run, publish at the same rate straight to JetStream on the same nats-server (the stored write's own latency, the floor under jetpull's; --no-store-floor skips it)" },
};

export async function measureUnicast(ctx: ScenarioContext, dep: PushTarget, binary: boolean, coalesceMs = coalesceWindowMs(ctx)): Promise<UnicastLoadResult> {
  const o = ctx.opts;
  const clients = o.num('clients');
  const serverPid = dep.targets[0]?.pid;
  if (serverPid !== undefined) requireServerFds(serverPid, dep.name, clients, o.num('maxInFlight') + 8);
  return runUnicastLoad(dep, {
    label: `${dep.name === 'jetpull' ? '' : `${dep.name} `}${binary ? 'binary unicast' : 'unicast'}`,
    clients,
    rate: o.num('rate'),
    durationMs: o.num('durationS') * 1000,
    maxInFlight: o.num('maxInFlight'),
    connectConcurrency: o.num('connectConcurrency'),
    connectTimeoutMs: o.num('connectTimeoutS') * 1000,
    addresses: addressesFor(ctx, clients),
    bodyBytes: o.num('bodyBytes'),
    binary,
    coalesceMs,
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
    ...(coalesceMs > 0
      ? [[`${label} latency, not coalescable`, `${fmtLatency(r.latencyNotCoalescableMs)} (${Math.round(r.coalescableShare * 1000) / 10}% of messages may have waited for a ${coalesceMs} ms coalescing window)`] as TableRow]
      : []),
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
  summary: 'C subscribers on private channels, R publishes/s to random channels for T s: latency, rate, losses; nginx + nchan side by side',
  options: { ...UNICAST_OPTIONS, ...NCHAN_OPTIONS },
  async run(ctx): Promise<ScenarioOutcome> {
    const clients = ctx.opts.num('clients');
    requireFds(clients, ctx.opts.num('maxInFlight') + 8, 'unicast');
    const dep = await deploymentFor(ctx);
    let r: UnicastLoadResult;
    let logCounts: ReturnType<typeof dep.logCounts>;
    let floor: StoreFloorResult | undefined;
    try {
      r = await measureUnicast(ctx, jetpullTarget(dep), false);
      logCounts = dep.logCounts();
      if (ctx.opts.bool('storeFloor') && dep.natsUrl !== undefined) {
        floor = await measureStoreFloor(dep.natsUrl, {
          rate: ctx.opts.num('rate'),
          durationMs: ctx.opts.num('durationS') * 1000,
          maxInFlight: ctx.opts.num('maxInFlight'),
          bodyBytes: ctx.opts.num('bodyBytes'),
          receivers: clients,
          deadline: ctx.deadline,
        });
      }
    } finally {
      await dep.stop();
    }
    const problems = unicastProblems('unicast', r);
    if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
    const table = unicastRows('unicast', r, coalesceWindowMs(ctx));
    if (floor !== undefined) {
      table.push(['stored write alone (JetStream publish → ack, same server and rate)', `${fmtLatency(floor.ackMs)} at ${floor.achievedRate}/s`]);
      if (floor.failed > 0) problems.push(`store floor: ${floor.failed} publishes failed`);
    }
    const windows = [{ label: 'unicast', window: r.window }];
    const peer = await measureOnNchan(ctx.opts, (server) => measureUnicast(ctx, nchanTarget(server), false, 0));
    let nchan: Record<string, unknown> | undefined;
    if (peer !== undefined && 'skipped' in peer) {
      nchan = { skipped: peer.skipped };
    } else if (peer !== undefined) {
      const p99Ratio = peer.r.latencyMs.p99 > 0 ? round(r.latencyMs.p99 / peer.r.latencyMs.p99, 3) : undefined;
      const p50Ratio = peer.r.latencyMs.p50 > 0 ? round(r.latencyMs.p50 / peer.r.latencyMs.p50, 3) : undefined;
      nchan = { ...unicastJson(peer.r), p99RatioJetpullToNchan: p99Ratio, p50RatioJetpullToNchan: p50Ratio };
      table.push(...unicastRows('nchan unicast', peer.r, 0), ['jetpull/nchan latency', `p50 × ${p50Ratio}, p99 × ${p99Ratio}`]);
      problems.push(...unicastProblems('nchan unicast', peer.r));
      windows.push({ label: 'nchan unicast', window: peer.r.window });
    }
    return {
      params: { ...ctx.opts.all(), serverCoalesceWindowMs: coalesceWindowMs(ctx) },
      results: {
        ...unicastJson(r),
        serverLogLines: logCounts,
        ...(floor === undefined ? {} : { storeFloor: { ...floor, p99RatioJetpullToFloor: floor.ackMs.p99 > 0 ? round(r.latencyMs.p99 / floor.ackMs.p99, 3) : undefined } }),
        ...(nchan === undefined ? {} : { nchan }),
      },
      window: r.window,
      windows,
      table,
      problems,
      serverLog: dep.logFile,
    };
  },
};
