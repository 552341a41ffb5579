import { requireFds, requireServerFds } from '../lib/env.ts';
import { measureOnNchan } from '../lib/nchan.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import { coalesceWindowMs, deploymentFor, NCHAN_OPTIONS, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { jetpullTarget, nchanTarget, type PushTarget } from '../lib/targets.ts';
import { log, randomHexId, round } from '../lib/util.ts';
import { FANOUT_OPTIONS, fanoutJson, fanoutLoadOptions, fanoutProblems, fanoutRows, measureCeiling } from './ceiling.ts';
import { runFanoutLoad, type FanoutLoadResult } from './fanout-load.ts';

/**
 * C subscribers, each on its own private channel and on one shared channel
 * (CHANNEL_ID=<priv>/<shared>, signed for jetpull); M messages published to the
 * shared channel as fast as they are acknowledged.
 */
async function fanoutOn(ctx: ScenarioContext, t: PushTarget, binary: boolean, settleMs: number): Promise<FanoutLoadResult> {
  const o = ctx.opts;
  const clients = o.num('clients');
  const serverPid = t.targets[0]?.pid;
  if (serverPid !== undefined) requireServerFds(serverPid, t.name, clients, o.num('publishConcurrency'));
  const shared = randomHexId();
  const privs = Array.from({ length: clients }, () => randomHexId());
  const label = `${t.name === 'jetpull' ? '' : `${t.name} `}${binary ? 'binary fanout' : 'fanout'}`;
  return runFanoutLoad(
    {
      host: t.host,
      port: t.port,
      wsPath: (i) => t.wsPath([privs[i]!, shared], binary),
      publishRequest: (body) => t.publishRequest(shared, body, 60),
      expectAck: (res) => t.expectAck(res),
      targets: t.targets,
      assertAlive: () => t.assertAlive(),
    },
    fanoutLoadOptions(ctx, label, binary, settleMs),
  );
}

export async function measureFanout(ctx: ScenarioContext, binary: boolean): Promise<{ r: FanoutLoadResult; serverLog: string | undefined; logCounts: { warn: number; error: number; fatal: number } }> {
  requireFds(ctx.opts.num('clients'), ctx.opts.num('publishConcurrency'), binary ? 'binary fanout' : 'fanout');
  const dep = await deploymentFor(ctx);
  try {
    const r = await fanoutOn(ctx, jetpullTarget(dep), binary, coalesceWindowMs(ctx) + 200);
    const logCounts = dep.logCounts();
    await dep.stop();
    return { r, serverLog: dep.logFile, logCounts };
  } finally {
    await dep.stop();
  }
}

const ratio = (a: number, b: number): number | undefined => (b > 0 ? round(a / b, 3) : undefined);

export const fanoutScenario: Scenario = {
  name: 'fanout',
  summary: 'C WebSocket subscribers on one shared channel, M messages as fast as acknowledged; ratio to the ceiling and to nginx + nchan',
  options: {
    ...FANOUT_OPTIONS,
    ...NCHAN_OPTIONS,
    ceiling: { type: 'boolean', default: true, help: 'measure the ceiling first in the same run (--no-ceiling skips it)' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const withCeiling = ctx.opts.bool('ceiling');
    const ceiling = withCeiling ? await measureCeiling(ctx) : undefined;
    if (ceiling) log(`ceiling: ${ceiling.deliveriesPerSec} deliveries/s`);
    const { r, serverLog, logCounts } = await measureFanout(ctx, false);
    const peer = await measureOnNchan(ctx.opts, (server) => fanoutOn(ctx, nchanTarget(server), false, 200));
    const ratioToCeiling = ceiling ? ratio(r.deliveriesPerSec, ceiling.deliveriesPerSec) : undefined;
    const table: TableRow[] = [];
    if (ceiling) table.push(...fanoutRows('ceiling', ceiling));
    table.push(...fanoutRows('fanout', r));
    if (ratioToCeiling !== undefined) table.push(['fanout/ceiling', String(ratioToCeiling)]);
    const problems = [...(ceiling ? fanoutProblems('ceiling', ceiling) : []), ...fanoutProblems('fanout', r)];
    if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${serverLog})`);
    const windows = [...(ceiling ? [{ label: 'ceiling', window: ceiling.window }] : []), { label: 'fanout', window: r.window }];
    let nchan: Record<string, unknown> | undefined;
    if (peer !== undefined && 'skipped' in peer) {
      nchan = { skipped: peer.skipped };
    } else if (peer !== undefined) {
      const deliveriesRatio = ratio(r.deliveriesPerSec, peer.r.deliveriesPerSec);
      const p99Ratio = ratio(r.latencyMs.p99, peer.r.latencyMs.p99);
      nchan = { ...fanoutJson(peer.r), deliveriesRatioJetpullToNchan: deliveriesRatio, p99RatioJetpullToNchan: p99Ratio };
      table.push(...fanoutRows('nchan', peer.r), ['jetpull/nchan', `deliveries/s × ${deliveriesRatio}, p99 × ${p99Ratio}`]);
      problems.push(...fanoutProblems('nchan', peer.r));
      windows.push({ label: 'nchan fanout', window: peer.r.window });
    }
    return {
      params: ctx.opts.all(),
      results: {
        ...fanoutJson(r),
        ...(ceiling ? { ceiling: fanoutJson(ceiling), ratioToCeiling } : {}),
        ...(nchan === undefined ? {} : { nchan }),
        serverLogLines: logCounts,
      },
      window: r.window,
      windows,
      table,
      problems,
      serverLog,
    };
  },
};
