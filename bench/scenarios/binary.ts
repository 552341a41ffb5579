import { requireFds } from '../lib/env.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import { coalesceWindowMs, deploymentFor, type Scenario } from '../lib/scenario.ts';
import type { WindowStats } from '../lib/proc.ts';
import { FANOUT_OPTIONS, fanoutJson, fanoutProblems, fanoutRows } from './ceiling.ts';
import { measureFanout } from './fanout.ts';
import { jetpullTarget } from '../lib/targets.ts';
import { measureUnicast, UNICAST_OPTIONS, unicastJson, unicastProblems, unicastRows } from './unicast.ts';

/** fanout and unicast with `binaryMode=true` subscribers (protobuf ResponseBatch frames, scanned without decoding). */
export const binaryScenario: Scenario = {
  name: 'binary',
  summary: 'fanout and unicast with binaryMode=true subscribers (protobuf ResponseBatch frames)',
  options: {
    ...UNICAST_OPTIONS,
    ...FANOUT_OPTIONS,
    drainIdleS: { type: 'number', default: 10, help: 'stop waiting for deliveries after this long without progress' },
    part: { type: 'string', default: 'all', help: 'fanout | unicast | all' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const part = ctx.opts.str('part');
    if (!['fanout', 'unicast', 'all'].includes(part)) throw new Error(`--part ${part}: one of fanout, unicast, all`);
    const results: Record<string, unknown> = {};
    const table: TableRow[] = [];
    const problems: string[] = [];
    const windows: Array<{ label: string; window: WindowStats }> = [];
    const logs: Record<string, unknown> = {};
    let serverLog: string | undefined;
    if (part !== 'unicast') {
      const { r, serverLog: f, logCounts } = await measureFanout(ctx, true);
      results.fanout = fanoutJson(r);
      table.push(...fanoutRows('binary fanout', r));
      problems.push(...fanoutProblems('binary fanout', r));
      windows.push({ label: 'binary fanout', window: r.window });
      logs.fanout = logCounts;
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${f})`);
      serverLog = f;
    }
    if (part !== 'fanout') {
      requireFds(ctx.opts.num('clients'), ctx.opts.num('maxInFlight') + 8, 'binary unicast');
      const dep = await deploymentFor(ctx);
      try {
        const r = await measureUnicast(ctx, jetpullTarget(dep), true);
        const logCounts = dep.logCounts();
        await dep.stop();
        results.unicast = unicastJson(r);
        table.push(...unicastRows('binary unicast', r, coalesceWindowMs(ctx)));
        problems.push(...unicastProblems('binary unicast', r));
        windows.push({ label: 'binary unicast', window: r.window });
        logs.unicast = logCounts;
        if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
        serverLog ??= dep.logFile;
      } finally {
        await dep.stop();
      }
    }
    return {
      params: { ...ctx.opts.all(), serverCoalesceWindowMs: coalesceWindowMs(ctx) },
      results: { ...results, serverLogLines: logs },
      window: windows[0]!.window,
      windows,
      table,
      problems,
      serverLog,
    };
  },
};
