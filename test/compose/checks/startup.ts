import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { SuiteContext } from '../context.ts';

/** The first `up --wait`, run by the suite's before hook on an engine that has no jetpull image yet. */
export function startupChecks(ctx: SuiteContext): void {
  it('up --wait builds jetpull and brings every service to healthy', async () => {
    // The before hook has waited for it (a second time after a start-up crash loop,
    // which the fresh-start check reports).
    assert.ok(ctx.firstUp, 'the stack was started');
    const ps = await ctx.compose.ok(['ps', '--all', '--format', 'json']);
    // One JSON object per line (compose 2.21+).
    const rows = ps.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { Service: string; State: string; Health: string });
    const expected = ['gateway1', 'gateway2', 'grafana', 'nats1', 'nats2', 'nats3', 'nginx', 'prometheus', 'publisher1'];
    assert.deepEqual(rows.map((r) => r.Service).sort(), expected);
    for (const r of rows) assert.equal(`${r.State}/${r.Health}`, 'running/healthy', `${r.Service}`);
  });

  it('pulled nothing: the services that reuse the built image wait for the build', () => {
    const up = ctx.firstUp;
    assert.ok(up, 'the stack was started');
    const output = `${up.stdout}\n${up.stderr}`;
    const pulls = output.split('\n').filter((l) => /\bPulling\b|registry-1\.docker\.io|pull access denied/.test(l));
    assert.deepEqual(pulls, [], 'compose tried to pull images');
  });
}
