import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jetpullServices, saveStackLogs, type SuiteContext } from '../context.ts';
import type { Compose } from '../compose.ts';
import { note, record } from '../timings.ts';

export interface StartOutcome {
  ms: number;
  code: number;
  /** Restarts of each jetpull container by the time the stack was healthy. */
  restarts: Record<string, number>;
  /** jetpull log lines that say JetStream could not place the stream yet. */
  placementErrors: number;
  /** Distinct error and fatal messages of the jetpull processes (why they exited). */
  errors: string[];
}

const PLACEMENT = /no suitable peers for placement/;

export async function restartsOf(compose: Compose, services: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of services) out[s] = (await compose.state(s).catch(() => ({ restartCount: -1 }))).restartCount;
  return out;
}

/** pino lines of level error (50) and fatal (60): "msg: err.message". */
function errorMessages(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if ((entry.level ?? 0) >= 50) out.push(`${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`);
    } catch {
      // not a log entry
    }
  }
  return out;
}

export async function outcomeOfUp(compose: Compose, up: { ms: number; code: number }): Promise<StartOutcome> {
  const services = await jetpullServices(compose);
  const logs = await Promise.all(services.map(async (s) => (await compose.logs(s)).stdout));
  return {
    ms: up.ms,
    code: up.code,
    restarts: await restartsOf(compose, services),
    placementErrors: logs.reduce((n, log) => n + log.split('\n').filter((l) => PLACEMENT.test(l)).length, 0),
    errors: [...new Set(logs.flatMap(errorMessages))],
  };
}

/** Several `down -v` + `up --wait` from nothing, each as a first start on a new host. */
export function freshStartChecks(ctx: SuiteContext, first: () => StartOutcome | undefined): void {
  it(`${ctx.settings.freshUps} fresh starts come up without a jetpull restart (processes wait for the cluster instead of exiting)`, async () => {
    await saveStackLogs(ctx, 'stack-main.log');
    const outcomes: StartOutcome[] = [];
    const firstOutcome = first();
    if (firstOutcome) outcomes.push(firstOutcome);
    while (outcomes.length < ctx.settings.freshUps) {
      const down = await ctx.compose.down();
      assert.equal(down.code, 0, `down: ${down.stderr}`);
      outcomes.push(await outcomeOfUp(ctx.compose, await ctx.compose.up()));
    }
    outcomes.forEach((o, i) => {
      const restarts = Object.values(o.restarts).reduce((a, b) => a + b, 0);
      record(`fresh start ${i + 1}: up --wait${i === 0 ? ' (with the image build)' : ''}`, o.ms);
      note(`fresh start ${i + 1}: exit code / jetpull restarts / placement errors`, `${o.code} / ${restarts} / ${o.placementErrors}`);
      for (const e of o.errors) note(`fresh start ${i + 1}: logged`, e.slice(0, 160));
    });
    const looped = outcomes.filter((o) => o.code !== 0 || o.placementErrors > 0 || Object.values(o.restarts).some((r) => r > 0));
    note('fresh starts with a jetpull crash loop', `${looped.length} of ${outcomes.length}`);
    assert.equal(looped.length, 0, `${looped.length} of ${outcomes.length} starts restarted jetpull`);
  });
}
