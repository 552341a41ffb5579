#!/usr/bin/env node
// Runs before `npm test` and `npm start`: a fresh clone has no node_modules, and the
// first thing a newcomer types must work. Installs the locked dependencies when they
// are missing or older than package-lock.json; plain Node, no dependency of its own.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const installed = `${root}node_modules/.package-lock.json`;
const lock = `${root}package-lock.json`;
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  process.stderr.write('jetpull: dependencies missing or out of date, running npm ci\n');
  const npm = process.env.npm_execpath ? [process.execPath, [process.env.npm_execpath]] : ['npm', []];
  const r = spawnSync(npm[0], [...npm[1], 'ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write('jetpull: npm ci failed; run it yourself in the repository root and try again\n');
    process.exit(r.status ?? 1);
  }
}
