import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * `npm run build` emits what package.json promises: a `jetpull` bin that runs as it is,
 * and `jetpull/client` with its types for a TypeScript consumer.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
  exports: Record<string, { types: string; development: string; default: string }>;
};

before(async () => {
  await run('npm', ['run', 'build'], { cwd: ROOT, timeout: 180_000 });
});

describe('build', () => {
  it('the jetpull bin is an executable node script that answers --help and runs commands', async () => {
    const bin = join(ROOT, pkg.bin.jetpull!);
    assert.ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'), 'a shebang line');
    accessSync(bin, constants.X_OK);
    const help = await run(bin, ['--help'], { cwd: tmpdir() });
    assert.match(help.stdout, /^Usage: jetpull \[command\]/);
    const signed = await run(bin, ['sign', 'c4ca4238a0b923820dcc509a6f75849b'], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '', PUSH_SECURITY__KEY: 'testkey' } });
    assert.equal(signed.stdout, 'c4ca4238a0b923820dcc509a6f75849b.4e7e2a27ca7ab489cbd631f2f6dd9309e1cf94b4\n');
  });

  it('jetpull/client resolves to the built module and its types; the development condition to the sources', async () => {
    const client = pkg.exports['./client']!;
    for (const file of [client.default, client.types, client.development]) assert.ok(existsSync(join(ROOT, file)), `${file} exists`);
    const script = "const m = await import('jetpull/client'); console.log(import.meta.resolve('jetpull/client'), typeof m.createPublisher, typeof m.publish, typeof m.PublishRefusedError)";
    const built = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT });
    assert.equal(built.stdout.trim(), `${new URL(client.default, `file://${ROOT}`).href} function function function`);
    const dev = await run(process.execPath, ['--conditions=development', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT });
    assert.equal(dev.stdout.trim(), `${new URL(client.development, `file://${ROOT}`).href} function function function`);
  });

  it('a TypeScript consumer type-checks against the published types, and misuse does not', async (t) => {
    const app = mkdtempSync(join(tmpdir(), 'jetpull-consumer-'));
    t.after(() => rmSync(app, { recursive: true, force: true }));
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(ROOT, join(app, 'node_modules', pkg.name));
    // A Node backend has the Node types (they declare Symbol.asyncDispose, which Publisher implements).
    symlinkSync(join(ROOT, 'node_modules', '@types'), join(app, 'node_modules', '@types'));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] }, include: ['*.ts'] }),
    );
    writeFileSync(
      join(app, 'app.ts'),
      [
        "import { createPublisher, PublishRefusedError, type PublishReceipt } from 'jetpull/client';",
        "const pub = createPublisher({ http: { url: 'http://127.0.0.1:8895/bitrix/pub/' } });",
        "const r: Promise<PublishReceipt> = pub.publish({ channels: ['c4ca4238a0b923820dcc509a6f75849b'], message: { module_id: 'im', command: 'message', params: { a: 1 } }, expirySec: 60 });",
        'r.catch((e: unknown) => e instanceof PublishRefusedError && e.code);',
        '// @ts-expect-error a message needs a command',
        "void pub.publish({ channels: [], message: { module_id: 'im' } });",
        '',
      ].join('\n'),
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(process.execPath, [tsc, '-p', app], { cwd: app }).catch((err: { stdout?: string }) => assert.fail(`tsc failed:\n${err.stdout}`));
  });
});
