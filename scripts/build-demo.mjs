#!/usr/bin/env node
// Part of `npm run build`, after tsc: the demo page (admin.demo) next to its compiled
// module, so dist/ serves it without esbuild or the pull client SDK installed
// (src/demo/assets.ts looks for these files first).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { bundleDemoClient, BUNDLE_FILE } = await import(`${root}dist/src/demo/assets.js`);
const out = `${root}dist/src/demo/page/`;
mkdirSync(out, { recursive: true });
copyFileSync(`${root}src/demo/page/index.html`, `${out}index.html`);
writeFileSync(`${out}${BUNDLE_FILE}`, await bundleDemoClient(`${root}src/demo/page/client.ts`));
