import { writeFileSync } from 'node:fs';
import { check, type Findings, type History } from './checker.ts';
import type { Step } from './plan.ts';
import { formatReport } from './report.ts';
import { Rig, type RigOptions } from './rig.ts';

/**
 * Runs a plan of faults on a fresh rig, then lets every acknowledged message
 * arrive (or not), reads from the stream where the missing ones are stored, checks,
 * and tears everything down whatever happened.
 */

export interface SuiteResult {
  findings: Findings;
  report: string;
  history: History;
  durationMs: number;
}

export async function runSuite(opts: RigOptions, steps: readonly Step[], title: string): Promise<SuiteResult> {
  const started = Date.now();
  const rig = new Rig(opts);
  opts.log(`plan (seed ${opts.seed}): ${steps.map((s) => `${s.name}${s.detail ? ` ${s.detail}` : ''}`).join(' → ')}`);
  try {
    await rig.start();
    rig.load.start();
    for (const s of steps) await s.run(rig);
    const tl = rig.timeline;
    tl.begin('drain');
    const q = await rig.quiesce(30_000);
    tl.note(`load stopped; ${q.complete ? 'every acknowledged message delivered' : `${q.missing} deliveries still missing`} after ${q.waitedMs} ms`);
    tl.end();
    await rig.auditUndelivered();
    const history: History = {
      origin: tl.origin,
      endAt: Date.now(),
      publishes: rig.load.history,
      clients: rig.clients.map((c) => c.rec),
      phases: tl.phases,
      processEvents: rig.processEvents,
      logs: rig.processes.flatMap((p) => p.logs).sort((a, b) => a.at - b.at),
      stored: rig.stored,
    };
    const findings = check(history);
    const durationMs = Date.now() - started;
    const report = formatReport(history, findings, { title: `${title} — nats-server ${rig.cluster.binary}, seed ${opts.seed}, ${Math.round(durationMs / 1000)} s`, detailLimit: 4 });
    const file = process.env.JETPULL_FAULTS_REPORT;
    if (file) writeFileSync(file, JSON.stringify({ title, findings, report }, null, 1));
    return { findings, report, history, durationMs };
  } finally {
    await rig.stop();
  }
}
