import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.ts';

/**
 * The demo page's files: `page/index.html` and the browser bundle of `page/client.ts`
 * (the official pull client, `@bitrix24/b24jssdk`, and the page's code).
 *
 * `npm run build` writes the bundle next to the compiled module
 * (dist/src/demo/page/client.js, scripts/build-demo.mjs), so an image built from
 * dist needs neither esbuild nor the SDK at run time. Run from the sources
 * (`npm start`), there is no built file and the bundle is made with esbuild from
 * node_modules (dev dependencies) on the first request, once.
 */

const PAGE_DIR = new URL('./page/', import.meta.url);
export const BUNDLE_FILE = 'client.js';

/** Bundles the page's entry file for the browser. esbuild is a dev dependency: imported only here. */
export async function bundleDemoClient(entry: string): Promise<string> {
  const esbuild = await import('esbuild');
  const out = await esbuild.build({ entryPoints: [entry], bundle: true, format: 'iife', platform: 'browser', target: 'es2020', minify: true, write: false, logLevel: 'silent' });
  return out.outputFiles[0]!.text;
}

export class DemoAssets {
  private script: Promise<string | undefined> | undefined;

  constructor(private readonly log: Logger) {}

  html(): Promise<string> {
    return readFile(new URL('index.html', PAGE_DIR), 'utf8');
  }

  /** The bundle, or undefined when it was not built and cannot be (no esbuild or SDK installed). */
  client(): Promise<string | undefined> {
    return (this.script ??= this.load());
  }

  private async load(): Promise<string | undefined> {
    const built = new URL(BUNDLE_FILE, PAGE_DIR);
    if (existsSync(built)) return readFile(built, 'utf8');
    const entry = fileURLToPath(new URL('client.ts', PAGE_DIR));
    try {
      const started = Date.now();
      const text = await bundleDemoClient(entry);
      this.log.info({ bytes: text.length, durationMs: Date.now() - started }, 'demo client bundled');
      return text;
    } catch (err) {
      this.log.warn({ err }, 'demo client cannot be bundled; run npm run build with the dev dependencies installed');
      return undefined;
    }
  }
}
