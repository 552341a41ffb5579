import { requireFds, requireServerFds } from '../lib/env.ts';
import { textPublishRequest } from '../lib/publish.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import { addressesFor, coalesceWindowMs, deploymentFor, privateToken, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { log, randomHexId, round } from '../lib/util.ts';
import { FANOUT_OPTIONS, fanoutJson, fanoutProblems, fanoutRows, measureCeiling } from './ceiling.ts';
import { runFanoutLoad, type FanoutLoadResult } from './fanout-load.ts';

/**
 * C subscribers, each on its own private channel and on one shared channel
 * (CHANNEL_ID=<priv>.<sig>/<shared>.<sig>); M messages published to the shared
 * channel as fast as they are acknowledged.
 */
export async function measureFanout(ctx: ScenarioContext, binary: boolean): Promise<{ r: FanoutLoadResult; serverLog: string | undefined; logCounts: { warn: number; error: number; fatal: number } }> {
  const o = ctx.opts;
  const clients = o.num('clients');
  requireFds(clients, o.num('publishConcurrency'), binary ? 'binary fanout' : 'fanout');
  const dep = await deploymentFor(ctx);
  try {
    if (dep.jetpullPid !== undefined) requireServerFds(dep.jetpullPid, 'jetpull', clients, o.num('publishConcurrency'));
    const shared = randomHexId();
    const sharedToken = privateToken(dep, shared);
    const privs = Array.from({ length: clients }, () => randomHexId());
    const r = await runFanoutLoad(
      {
        host: dep.host,
        port: dep.port,
        wsPath: (i) => `/bitrix/subws/?CHANNEL_ID=${privateToken(dep, privs[i]!)}/${sharedToken}${binary ? '&binaryMode=true' : ''}&revision=19`,
        publishRequest: (body) => textPublishRequest(dep.host, dep.port, shared, body, 60),
        targets: dep.targets,
        assertAlive: () => dep.assertAlive(),
      },
      {
        label: binary ? 'binary fanout' : 'fanout',
        clients,
        messages: o.num('messages'),
        publishConcurrency: o.num('publishConcurrency'),
        connectConcurrency: o.num('connectConcurrency'),
        connectTimeoutMs: o.num('connectTimeoutS') * 1000,
        addresses: addressesFor(ctx, clients),
        bodyBytes: o.num('bodyBytes'),
        latencySampleEvery: o.num('latencySampleEvery'),
        binary,
        drainIdleMs: o.num('drainIdleS') * 1000,
        settleMs: coalesceWindowMs(ctx) + 200,
        deadline: ctx.deadline,
      },
    );
    const logCounts = dep.logCounts();
    await dep.stop();
    return { r, serverLog: dep.logFile, logCounts };
  } finally {
    await dep.stop();
  }
}

export const fanoutScenario: Scenario = {
  name: 'fanout',
  summary: 'C WebSocket subscribers on one shared channel, M messages as fast as acknowledged; ratio to the ceiling',
  options: {
    ...FANOUT_OPTIONS,
    ceiling: { type: 'boolean', default: true, help: 'measure the ceiling first in the same run (--no-ceiling skips it)' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const withCeiling = ctx.opts.bool('ceiling');
    const ceiling = withCeiling ? await measureCeiling(ctx) : undefined;
    if (ceiling) log(`ceiling: ${ceiling.deliveriesPerSec} deliveries/s`);
    const { r, serverLog, logCounts } = await measureFanout(ctx, false);
    const ratio = ceiling && ceiling.deliveriesPerSec > 0 ? round(r.deliveriesPerSec / ceiling.deliveriesPerSec, 3) : undefined;
    const table: TableRow[] = [];
    if (ceiling) table.push(...fanoutRows('ceiling', ceiling));
    table.push(...fanoutRows('fanout', r));
    if (ratio !== undefined) table.push(['fanout/ceiling', String(ratio)]);
    const problems = [...(ceiling ? fanoutProblems('ceiling', ceiling) : []), ...fanoutProblems('fanout', r)];
    if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${serverLog})`);
    return {
      params: ctx.opts.all(),
      results: {
        ...fanoutJson(r),
        ...(ceiling ? { ceiling: fanoutJson(ceiling), ratioToCeiling: ratio } : {}),
        serverLogLines: logCounts,
      },
      window: r.window,
      windows: [...(ceiling ? [{ label: 'ceiling', window: ceiling.window }] : []), { label: 'fanout', window: r.window }],
      table,
      problems,
      serverLog,
    };
  },
};
