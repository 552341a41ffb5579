import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runScript(body: string): Promise<{ code: number | null; stdout: string }> {
  const script = `import { guardProcess } from './src/log/process-guards.ts';
import { createRootLogger } from './src/log/logger.ts';
guardProcess(createRootLogger({ level: 'info', processUniqueId: 't', version: 't' }));
${body}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 20_000 }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
    );
  });
}

describe('process guards', () => {
  it('an unhandled rejection is logged and the process keeps serving', async () => {
    const r = await runScript("Promise.reject(new Error('boom')); setTimeout(() => console.log('STILL-SERVING'), 200);");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /"msg":"unhandled rejection"/);
    assert.match(r.stdout, /STILL-SERVING/);
  });

  it('an uncaught exception is logged and the process exits 1', async () => {
    const r = await runScript("setTimeout(() => { throw new Error('boom'); }, 10); setTimeout(() => console.log('NOT-REACHED'), 500);");
    assert.equal(r.code, 1);
    assert.match(r.stdout, /"msg":"uncaught exception, exiting"/);
    assert.doesNotMatch(r.stdout, /NOT-REACHED/);
  });
});
