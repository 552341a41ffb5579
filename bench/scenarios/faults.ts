import { randomPlan } from '../../test/faults/lib/plan.ts';
import { DEFAULT_RIG, SUITE_LIMITS } from '../../test/faults/lib/rig.ts';
import { Rng } from '../../test/faults/lib/rng.ts';
import { runSuite } from '../../test/faults/lib/run-suite.ts';
import { fmtMs } from '../../test/faults/lib/stats.ts';
import { ResourceSampler } from '../lib/proc.ts';
import { windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import type { Scenario } from '../lib/scenario.ts';
import { log } from '../lib/util.ts';

/**
 * The fault-injection suite (test/faults/) for minutes of faults: the same rig (3
 * nats-server nodes, two gateways, one publisher, official-client-like subscribers,
 * a steady publish load), with fault order and timings drawn from --seed until
 * --duration is used up, then the same checker. The plan is printed first, so a
 * seed repeats a run. JETPULL_TEST_NATS_BINARY picks the nats-server.
 */
export const faultsScenario: Scenario = {
  name: 'faults',
  summary: 'random faults (node kill/pause, gateway/publisher kill, sleepers, outbox, catch-up, aged stream) on a 3-node cluster; checks no 200 is lost',
  options: {
    duration: { type: 'number', default: 300, help: 'seconds of faults (the plan is drawn until it is used up)' },
    seed: { type: 'number', help: 'seed of the fault order, timings and publish targets (default: drawn and printed)' },
    rate: { type: 'number', default: DEFAULT_RIG.rate, help: 'steady publishes per second' },
    recreate: { type: 'boolean', default: true, help: 'end with a PUSH_MESSAGES deletion and recreation' },
    fillerMib: { type: 'number', default: 40, help: 'MiB of filler traffic in an aged-stream phase' },
    timeoutS: { type: 'number', default: 7200, help: 'hard limit for the whole run; the run is aborted after it' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const seed = o.optNum('seed') ?? Math.floor(Math.random() * 1_000_000);
    const durationS = o.num('duration');
    log(`faults: seed ${seed} (repeat with --seed ${seed} --duration ${durationS})`);
    const steps = randomPlan(new Rng(seed), durationS * 1000, { fillerBytes: o.num('fillerMib') * 1024 * 1024, ...SUITE_LIMITS, recreate: o.bool('recreate') });
    const sampler = new ResourceSampler([]).start();
    const result = await runSuite({ ...DEFAULT_RIG, seed, rate: o.num('rate'), log }, steps, `faults --seed ${seed} --duration ${durationS}`);
    // The suite's nats-server and jetpull processes come and go (kills, restarts), so they are
    // not sampled; "other processes" would count them as outside load and warn wrongly.
    const window = { ...sampler.stop(), otherPct: NaN };
    process.stderr.write(`${result.report}\n`);
    const f = result.findings;
    const t = f.totals;
    const table: TableRow[] = [
      ['seed', String(seed)],
      ['plan', steps.map((s) => s.name).join(' → ')],
      ['publishes (200 / gave up)', `${t.published} (${t.acked} / ${t.failedPublishes})`],
      ['expected deliveries', String(t.expectedDeliveries)],
      ['lost', String(t.lost)],
      ['visible duplicates', String(t.visibleDuplicates)],
      ['mids not increasing', String(t.midIssues)],
      ['mids naming two messages', String(t.midConflicts)],
      ['unexpected exits / not ready at end', `${t.unexpectedExits} / ${t.notReadyAtEnd}`],
      ['delivery latency p50 / p99', `${fmtMs(f.deliveryLatency.p50)} / ${fmtMs(f.deliveryLatency.p99)}`],
      ...f.phases
        .filter((p) => p.faultAt !== undefined)
        .map((p): TableRow => [
          p.name,
          `lost ${p.lost}, dups ${p.duplicates}, mid issues ${p.midIssues}; first 200 after clearing ${fmtMs(p.firstAckAfterClearMs)}, ack gap ${fmtMs(p.longestAckGapMs)}, deliveries back ${fmtMs(p.deliveryResumeMaxMs)}`,
        ]),
    ];
    const problems: string[] = [];
    if (t.lost > 0) problems.push(`${t.lost} acknowledged deliveries lost`);
    if (t.visibleDuplicates > 0) problems.push(`${t.visibleDuplicates} visible duplicates`);
    if (t.midIssues > 0) problems.push(`${t.midIssues} mids not increasing`);
    if (t.midConflicts > 0) problems.push(`${t.midConflicts} mids naming two messages`);
    if (t.unexpectedExits > 0) problems.push(`${t.unexpectedExits} unexpected process exits`);
    if (t.notReadyAtEnd > 0) problems.push(`${t.notReadyAtEnd} processes not ready at the end`);
    return {
      params: { seed, durationS, rate: o.num('rate'), recreate: o.bool('recreate'), fillerMib: o.num('fillerMib'), plan: steps.map((s) => `${s.name} ${s.detail}`) },
      results: { totals: t, phases: f.phases, deliveryLatency: f.deliveryLatency, publishLatency: f.publishLatency, durationMs: result.durationMs, loadgen: windowJson(window) },
      window,
      windows: [{ label: 'faults', window }],
      table,
      problems,
    };
  },
};
