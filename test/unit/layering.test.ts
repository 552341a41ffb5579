import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Import rules of docs/ARCHITECTURE.md, read from the sources. */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every module specifier a file imports, statically or dynamically; relative ones as repository paths. */
function importsOf(file: string): string[] {
  // TypeScript's own scan: static, side-effect and dynamic imports, not comments.
  const specifiers = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true).importedFiles.map((f) => f.fileName);
  return specifiers.map((s) => (s.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), s)) : s));
}

describe('layering', () => {
  it('nothing outside src/nats imports a NATS package', () => {
    const offenders = sources('src').filter((f) => !f.startsWith('src/nats/')).filter((f) => importsOf(f).some((s) => s.startsWith('@nats-io/')));
    assert.deepEqual(offenders, []);
  });

  it('the publisher library (src/client) uses only itself, its NATS module and small helpers', () => {
    const allowed = (s: string): boolean =>
      s.startsWith('src/client/') || s === 'src/nats/publish-client.ts' || s.startsWith('src/util/') || s === 'zod' || s.startsWith('node:');
    const found = sources('src/client').flatMap((f) => importsOf(f).filter((s) => !allowed(s)).map((s) => `${f} imports ${s}`));
    assert.deepEqual(found, []);
    assert.ok(importsOf('src/client/nats-transport.ts').includes('src/nats/publish-client.ts'), 'the rules are read from real imports');
  });
});
