import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jetpullServices, type SuiteContext } from '../context.ts';

/** What compose itself makes of docker-compose.yml, before anything starts. */
export function configurationChecks(ctx: SuiteContext): void {
  it('refuses to start without PUSH_SECURITY_KEY, and says what to set', async () => {
    for (const value of [undefined, '']) {
      const env = { ...process.env };
      delete env.PUSH_SECURITY_KEY;
      if (value !== undefined) env.PUSH_SECURITY_KEY = value;
      const r = await ctx.compose.run(['config', '--quiet'], { env });
      const what = value === undefined ? 'unset' : 'empty';
      assert.notEqual(r.code, 0, `compose accepted the file with PUSH_SECURITY_KEY ${what}`);
      assert.match(r.stderr, /PUSH_SECURITY_KEY/, `the error names the variable to set (key ${what}): ${r.stderr.trim()}`);
    }
  });

  it('gives every jetpull service the key it is started with', async () => {
    const { services } = await ctx.compose.config();
    const names = await jetpullServices(ctx.compose);
    assert.deepEqual(names, ['gateway1', 'gateway2', 'publisher1']);
    for (const name of names) assert.equal(services[name]!.environment?.PUSH_SECURITY__KEY, ctx.settings.key, `${name}: PUSH_SECURITY__KEY`);
  });

  it('builds the jetpull image in one service and never pulls it (compose 2.26 and 2.40)', async () => {
    const bins: Array<string | undefined> = [undefined, ctx.settings.compose.altComposeBin];
    for (const bin of bins) {
      const version = (await ctx.compose.run(['version', '--short'], { bin })).stdout.trim();
      const r = await ctx.compose.run(['config', '--format', 'json'], { bin });
      assert.equal(r.code, 0, `compose ${version} rejects the file: ${r.stderr}`);
      const { services } = JSON.parse(r.stdout) as { services: Record<string, { image?: string; build?: unknown; pull_policy?: string }> };
      const builder = Object.entries(services).filter(([, s]) => s.build);
      assert.equal(builder.length, 1, 'one service builds the image');
      const [name, svc] = builder[0]!;
      assert.equal(svc.pull_policy, 'build', `compose ${version}: ${name} builds, never pulls`);
      for (const [other, s] of Object.entries(services)) {
        if (other === name || s.image !== svc.image) continue;
        assert.equal(s.pull_policy, 'never', `compose ${version}: ${other} reuses ${svc.image} and must not pull it`);
      }
      const pull = await ctx.compose.run(['pull', ...Object.keys(services).filter((n) => services[n]!.image === svc.image)], { bin });
      assert.equal(pull.code, 0, `compose ${version} pull of the jetpull services: ${pull.stderr}`);
      assert.doesNotMatch(pull.stderr + pull.stdout, /Pulling|registry|denied/i, `compose ${version} tried to pull ${svc.image}`);
    }
  });
}
