import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * Headless Chromium with a page that runs the official pull client, served from an
 * origin of its own (another port than jetpull's), so the browser applies its CORS
 * and Origin rules to the long poll and the WebSocket exactly as on a portal page
 * (official-client.md §10). Chromium comes from the OS (`apt-get install chromium`);
 * `CHROMIUM_PATH` points elsewhere.
 */

const PAGE_ENTRY = new URL('../browser/pull-page.ts', import.meta.url).pathname;

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What the page's network saw, in order: poll URLs with their status, WebSocket URLs. */
export interface PageTraffic {
  polls: Array<{ url: string; status: number; lastMessageId: string | null }>;
  sockets: string[];
}

export interface BrowserHarness {
  /** http://127.0.0.1:<port> the page is served from. */
  readonly origin: string;
  /** A fresh page with the pull client loaded; its traffic to `pushBase` is recorded. */
  newPage(pushBase: string): Promise<{ page: Page; traffic: PageTraffic }>;
  stop(): Promise<void>;
}

async function bundle(): Promise<string> {
  const out = await build({ entryPoints: [PAGE_ENTRY], bundle: true, format: 'iife', platform: 'browser', write: false, logLevel: 'warning' });
  return out.outputFiles[0]!.text;
}

function servePage(script: string): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/bundle.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(script);
    } else if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>pull</title><script src="/bundle.js"></script>');
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Headless Chromium of the OS, quiet on the network. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // The machine's network is closed: without these Chromium keeps dialling Google.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function startBrowser(): Promise<BrowserHarness> {
  const [script, browser] = await Promise.all([bundle(), launchChromium()]);
  const server = await servePage(script);
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pages: Page[] = [];

  return {
    origin,
    async newPage(pushBase) {
      const page = await browser.newPage();
      pages.push(page);
      const traffic: PageTraffic = { polls: [], sockets: [] };
      page.on('websocket', (ws) => traffic.sockets.push(ws.url()));
      page.on('requestfinished', (req) => {
        if (!req.url().startsWith(pushBase)) return;
        void req.response().then((res) => {
          if (res !== null) traffic.polls.push({ url: req.url(), status: res.status(), lastMessageId: res.headers()['last-message-id'] ?? null });
        });
      });
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => typeof (globalThis as unknown as { __startPull?: unknown }).__startPull === 'function');
      return { page, traffic };
    },
    async stop() {
      for (const p of pages) await p.evaluate(() => (globalThis as unknown as { __stopPull(): void }).__stopPull()).catch(() => undefined);
      await browser.close();
      await new Promise((r) => server.close(r));
    },
  };
}
