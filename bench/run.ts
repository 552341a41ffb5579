import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { COMMON_OPTIONS, parseOptions, usage, type OptSpecs } from './lib/cli.ts';
import { installExitHandlers, runCleanups } from './lib/cleanup.ts';
import { BenchSetupError, machineInfo } from './lib/env.ts';
import { cpuRss, formatTable, otherLoadWarning, saturationWarning, type RunReport } from './lib/report.ts';
import type { Scenario } from './lib/scenario.ts';
import { log, nowMs } from './lib/util.ts';
import { atomicBatchScenario } from './scenarios/atomic-batch.ts';
import { binaryScenario } from './scenarios/binary.ts';
import { catchUpScenario } from './scenarios/catch-up.ts';
import { ceilingScenario } from './scenarios/ceiling.ts';
import { clusterWritesScenario } from './scenarios/cluster-writes.ts';
import { deliveryCostScenario } from './scenarios/delivery-cost.ts';
import { fanoutScenario } from './scenarios/fanout.ts';
import { faultsScenario } from './scenarios/faults.ts';
import { idleScenario } from './scenarios/idle.ts';
import { interestScenario } from './scenarios/interest.ts';
import { longpollScenario } from './scenarios/longpoll.ts';
import { publishScenario } from './scenarios/publish.ts';
import { replayScenario } from './scenarios/replay.ts';
import { soakScenario } from './scenarios/soak.ts';
import { unicastScenario } from './scenarios/unicast.ts';

/**
 * `npm run bench -- <scenario> [options]`: starts nats-server and jetpull (or targets
 * a running deployment), runs one scenario, prints a short table and then ONE JSON
 * line with every figure (the last line of stdout). Progress goes to stderr.
 */

const SCENARIOS: Scenario[] = [
  ceilingScenario,
  fanoutScenario,
  unicastScenario,
  idleScenario,
  publishScenario,
  replayScenario,
  longpollScenario,
  binaryScenario,
  faultsScenario,
  atomicBatchScenario,
  soakScenario,
  clusterWritesScenario,
  interestScenario,
  deliveryCostScenario,
  catchUpScenario,
];

function specsOf(s: Scenario): OptSpecs {
  return { ...COMMON_OPTIONS, ...s.options };
}

function help(): string {
  const lines = ['usage: npm run bench -- <scenario> [options]', '', 'scenarios:'];
  for (const s of SCENARIOS) lines.push(`  ${s.name.padEnd(9)} ${s.summary}`);
  lines.push('', 'options of every scenario:', usage(COMMON_OPTIONS));
  for (const s of SCENARIOS) lines.push('', `options of ${s.name}:`, usage(s.options));
  return lines.join('\n');
}

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return name === undefined ? 2 : 0;
  }
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (scenario === undefined) {
    process.stderr.write(`unknown scenario "${name}"; one of: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  let opts;
  try {
    opts = parseOptions(rest, specsOf(scenario));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  installExitHandlers();
  const timeoutS = opts.num('timeoutS');
  const deadline = nowMs() + timeoutS * 1000;
  // The global timeout: the run is aborted (children killed, temp files removed) after it.
  const hardStop = setTimeout(() => {
    process.stderr.write(`bench: --timeout-s ${timeoutS} reached; aborting\n`);
    void runCleanups(5_000).finally(() => process.exit(3));
  }, timeoutS * 1000 + 30_000);
  hardStop.unref();

  const machine = machineInfo(opts.optStr('natsBinary'));
  const date = new Date().toISOString();
  log(`scenario ${scenario.name} on ${machine.cores} cores, ${machine.memGiB} GiB, node ${machine.node}, nats-server ${machine.natsServer}; load average ${machine.loadAvgAtStart.join(' ')}`);
  try {
    const outcome = await scenario.run({ scenario: scenario.name, opts, deadline });
    const { cpu, rss } = cpuRss(outcome.window);
    const saturated = outcome.windows.some((w) => w.window.loadgenSaturated);
    const otherLoadMaxPct = Math.max(0, ...outcome.windows.map((w) => (Number.isFinite(w.window.otherPct) ? w.window.otherPct : 0)));
    const report: RunReport = {
      scenario: scenario.name,
      date,
      machine,
      // The security key is a secret: the report only says whether one was given.
      params: 'key' in outcome.params ? { ...outcome.params, key: '(given)' } : outcome.params,
      results: outcome.results,
      cpu,
      rss,
      loadgenSaturated: saturated,
      otherLoadMaxPct,
      problems: outcome.problems,
      ...(outcome.serverLog === undefined ? {} : { serverLog: outcome.serverLog }),
    };
    const out: string[] = [];
    for (const w of outcome.windows) {
      const warning = saturationWarning(w.label, w.window);
      if (warning !== undefined) out.push(warning);
      const other = otherLoadWarning(w.label, w.window);
      if (other !== undefined) out.push(other);
    }
    for (const p of outcome.problems) out.push(`PROBLEM: ${p}`);
    out.push(formatTable(`${scenario.name} — ${date} — ${machine.cores} cores, ${machine.memGiB} GiB, node ${machine.node}, nats-server ${machine.natsServer}`, outcome.table));
    const line = JSON.stringify(report);
    const outFile = opts.optStr('out');
    if (outFile !== undefined && outFile !== '') {
      mkdirSync(dirname(outFile), { recursive: true });
      writeFileSync(outFile, `${line}\n`);
      log(`JSON written to ${outFile}`);
    }
    process.stdout.write(`${out.join('\n')}\n${line}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BenchSetupError) process.stderr.write(`bench: ${err.message}\n`);
    else process.stderr.write(`bench: ${scenario.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  } finally {
    await runCleanups();
    clearTimeout(hardStop);
  }
}

const code = await main();
process.exit(code);
