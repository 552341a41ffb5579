import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ciPlan } from './lib/plan.ts';
import { DEFAULT_RIG, SUITE_LIMITS } from './lib/rig.ts';
import { runSuite, type SuiteResult } from './lib/run-suite.ts';
import { fmtMs } from './lib/stats.ts';

/**
 * "A 200 is never lost": a real 3-node nats-server cluster, two gateways and a
 * publisher as jetpull processes, official-client-like subscribers and a steady
 * publish load, through each fault once and one combined phase, then the checker.
 * The report (stdout) has the figures per fault and the debug detail of every
 * finding; each test below fails on one kind of finding.
 *
 * Bounds: the whole file takes about 5 minutes on 2 cores; publishing must be
 * acknowledged again within 30 s of a fault being cleared (a new stream leader is
 * elected within a few seconds; the publisher's own timeout is 5 s).
 */

const RECOVERY_BOUND_MS = 30_000;
const log = (line: string): void => void process.stderr.write(`[faults] ${line}\n`);

let result: SuiteResult;

describe('fault injection: a 200 is never lost', { timeout: 9 * 60_000 }, () => {
  before(async () => {
    result = await runSuite(
      { ...DEFAULT_RIG, log },
      ciPlan({ fillerBytes: 24 * 1024 * 1024, ...SUITE_LIMITS }),
      'fault suite (CI)',
    );
    process.stdout.write(`${result.report}\n`);
  });

  it('every acknowledged message reaches every subscriber that should have it', () => {
    const f = result.findings;
    const byPhase = f.phases.filter((p) => p.lost > 0).map((p) => `${p.name}: ${p.lost}`);
    assert.equal(f.totals.lost, 0, `${f.totals.lost} of ${f.totals.expectedDeliveries} expected deliveries lost (${byPhase.join(', ')}); see the report for each one`);
  });

  it('no message reaches a client twice after its de-duplication', () => {
    const f = result.findings;
    assert.equal(f.totals.visibleDuplicates, 0, `${f.totals.visibleDuplicates} visible duplicates: ${f.duplicates.slice(0, 3).map((d) => `${d.client} n=${d.n} [${d.phase}]`).join(', ')}`);
  });

  it('mids increase on every connection and across a long-poll client\'s answers', () => {
    const f = result.findings;
    assert.equal(f.totals.midIssues, 0, `${f.totals.midIssues} mids not increasing: ${f.midIssues.slice(0, 3).map((m) => `${m.client} ${m.kind} [${m.phase}]`).join(', ')}`);
  });

  it('a mid names one message', () => {
    const f = result.findings;
    assert.equal(f.totals.midConflicts, 0, `${f.totals.midConflicts} mids reached clients as two different messages: ${f.midConflicts.slice(0, 3).map((m) => `${m.mid} n=${m.first.n}/${m.second.n} [${m.phase}]`).join(', ')}`);
  });

  it('no process exits on its own, and every one is ready at the end', () => {
    const f = result.findings;
    assert.deepEqual(f.unexpectedExits.map((e) => `${e.process} ${e.detail}`), [], 'unexpected exits');
    assert.deepEqual(f.notReadyAtEnd, [], 'processes not answering /readyz 200 at the end');
  });

  it(`publishing is acknowledged again within ${RECOVERY_BOUND_MS / 1000} s of every fault being cleared`, () => {
    const late = result.findings.phases
      .filter((p) => p.clearedAt !== undefined)
      .filter((p) => p.firstAckAfterClearMs === undefined || p.firstAckAfterClearMs > RECOVERY_BOUND_MS)
      .map((p) => `${p.name}: ${fmtMs(p.firstAckAfterClearMs)}`);
    assert.deepEqual(late, [], 'phases after which publishing did not recover in time');
  });
});
