import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnJetpull, type JetpullPorts, type JetpullProcess } from '../helpers/process.ts';
import { publishText } from '../helpers/backend.ts';
import { TEST_KEY } from '../helpers/channels.ts';
import { demoUser } from '../../src/demo/demo-user.ts';
import { createSigner } from '../../src/wire/channel-id.ts';

/**
 * The demo page (admin.demo) in headless Chromium, as a newcomer uses it: served by
 * the admin listener, so the official client on it subscribes to the public listener
 * of another origin (CORS on the long poll, Origin on the WebSocket, as on a portal).
 * For versions 3 and 4, over WebSocket and long polling: a message published with the
 * page's form is shown; jetpull is stopped (SIGTERM) and started again on the same
 * ports and NATS; a message published while it is down (through a publisher-only
 * process on the same NATS) is shown once,
 * replayed by the mid the client reconnected with, and nothing shown before repeats.
 */

interface Mode {
  name: string;
  user: number;
  version: 3 | 4;
  transport: 'websocket' | 'longpolling';
}

const MODES: Mode[] = [
  { name: 'v3 websocket', user: 31, version: 3, transport: 'websocket' },
  { name: 'v3 long polling', user: 32, version: 3, transport: 'longpolling' },
  { name: 'v4 websocket', user: 41, version: 4, transport: 'websocket' },
  { name: 'v4 long polling', user: 42, version: 4, transport: 'longpolling' },
];

/** The official client backs off 15-18 s after a failed reconnect, so the restart takes that long to be noticed. */
const RECONNECT_MS = 40_000;
/** The module_id the demo page listens for (src/demo/page/client.ts). */
const DEMO_MODULE = 'demo';
const ENV = {
  PUSH_ADMIN__DEMO: 'true',
  PUSH_GATEWAY__LONG_POLL_TIMEOUT_MS: '3000',
  PUSH_GATEWAY__DRAIN_WINDOW_MS: '300',
};

/** What a page's network saw: WebSockets and long polls to the public listener, with when they started. */
interface Traffic {
  sockets: Array<{ url: string; at: number; frames: number }>;
  polls: Array<{ url: string; at: number; status?: number }>;
}

interface OpenPage {
  mode: Mode;
  page: Page;
  traffic: Traffic;
}

let nats: TestNats;
let ports: JetpullPorts;
let jp: JetpullProcess;
let browser: Browser;
const pages: OpenPage[] = [];

before(async () => {
  nats = await startTestNats();
  ports = { port: await freePort(), adminPort: await freePort() };
  [jp, browser] = await Promise.all([spawnJetpull(nats.url, ENV, { ports }), launchChromium()]);
});

after(async () => {
  await browser?.close();
  await jp?.stop();
  await nats?.stop();
});

async function openPage(mode: Mode): Promise<OpenPage> {
  const page = await browser.newPage();
  const traffic: Traffic = { sockets: [], polls: [] };
  page.on('websocket', (ws) => {
    const s = { url: ws.url(), at: Date.now(), frames: 0 };
    traffic.sockets.push(s);
    ws.on('framereceived', () => s.frames++);
  });
  const polls = new Map<unknown, Traffic['polls'][number]>();
  page.on('request', (req) => {
    if (!req.url().startsWith(jp.base)) return;
    const p = { url: req.url(), at: Date.now() };
    polls.set(req, p);
    traffic.polls.push(p);
  });
  // The status is taken when the headers arrive, before the body the page shows.
  page.on('response', (res) => {
    const p = polls.get(res.request());
    if (p) p.status = res.status();
  });
  await page.goto(`${jp.adminBase}/demo?user=${mode.user}&version=${mode.version}&transport=${mode.transport}`);
  await page.locator('#status[data-status=online]').waitFor({ timeout: 15_000 });
  return { mode, page, traffic };
}

/** Publishes with the page's form; resolves once jetpull answered that it is stored. */
async function publishWithForm(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#publish-form button[type=submit]');
  await page.locator('#published[data-ok]').waitFor({ timeout: 10_000 });
  assert.equal(await page.getAttribute('#published', 'data-ok'), 'true', `${text}: ${await page.textContent('#published')}`);
}

/** The event the page's form sends (src/demo/page/client.ts). */
const demoMessage = (text: string) => ({ module_id: DEMO_MODULE, command: 'message', params: { text, sent_at: Date.now() } });

const shown = (page: Page, text: string) => page.locator(`#messages li[data-text="${text}"]`);

async function waitShown(page: Page, text: string, timeout: number): Promise<void> {
  await shown(page, text).first().waitFor({ timeout });
}

describe('demo page in Chromium, served by the admin listener', () => {
  before(async () => {
    for (const mode of MODES) pages.push(await openPage(mode));
  });

  for (const [i, mode] of MODES.entries()) {
    it(`${mode.name}: a message published with the form is shown, the channel online`, async () => {
      const { page, traffic } = pages[i]!;
      assert.notEqual(new URL(page.url()).origin, jp.base, 'the page is of another origin than the public listener');
      await publishWithForm(page, `before ${mode.name}`);
      await waitShown(page, `before ${mode.name}`, 10_000);
      assert.equal(await shown(page, `before ${mode.name}`).getAttribute('data-replayed'), 'false');
      await page.locator('#online', { hasText: /^online$/ }).waitFor({ timeout: 5_000 });
      assert.match((await page.textContent('#mid')) ?? '', /^[0-9a-f]{20,}$/, 'the mid cursor is shown');
      if (mode.transport === 'websocket') {
        assert.equal(traffic.sockets.length, 1, 'one WebSocket');
        assert.ok(traffic.sockets[0]!.url.startsWith(`ws://127.0.0.1:${jp.port}/bitrix/subws/?CHANNEL_ID=`), traffic.sockets[0]!.url);
        assert.equal(traffic.sockets[0]!.url.includes('binaryMode=true'), mode.version === 4);
        assert.match((await page.textContent('#mode')) ?? '', mode.version === 4 ? /protobuf/ : /text/);
      } else {
        assert.equal(traffic.sockets.length, 0, 'no WebSocket');
        assert.ok(traffic.polls.some((p) => p.status === 200), 'a long poll answered the message');
        assert.equal(traffic.polls[0]!.url.includes('binaryMode=true'), mode.version === 4);
      }
    });
  }

  describe('after jetpull is restarted on the same ports and NATS', () => {
    const cursors: string[] = [];
    let restartedAt = 0;

    before(async () => {
      for (const { page } of pages) cursors.push((await page.textContent('#mid')) ?? '');
      await jp.stop();
      // Published while nothing listens on the public port, so no client can be back before
      // it (the official client retries at once and then every 15-18 s: it may well be).
      // A publisher-only process on other ports stores it in the same NATS, on the demo channel.
      const away = await spawnJetpull(nats.url, { PUSH_ROLE: 'publisher' }, { ports: { port: await freePort(), adminPort: await freePort() } });
      try {
        const signer = createSigner([TEST_KEY], 'sha1');
        for (const { mode } of pages) {
          const res = await publishText(away.base, demoUser(mode.user, signer).privateId, JSON.stringify(demoMessage(`while away ${mode.name}`)), 3_600);
          assert.equal(res.status, 200, await res.text());
        }
      } finally {
        await away.stop();
      }
      jp = await spawnJetpull(nats.url, ENV, { ports });
      restartedAt = Date.now();
    });

    for (const [i, mode] of MODES.entries()) {
      it(`${mode.name}: the missed message is replayed by mid and shown once, nothing repeats`, async () => {
        const { page, traffic } = pages[i]!;
        await waitShown(page, `while away ${mode.name}`, RECONNECT_MS);
        assert.equal(await shown(page, `while away ${mode.name}`).getAttribute('data-replayed'), 'true', 'published before the connection it came on');
        // The page's network events reach this process on their own path, maybe after the page drew the message.
        const resumedAfterRestart = () =>
          mode.transport === 'websocket' ? traffic.sockets.filter((s) => s.at > restartedAt && s.frames > 0) : traffic.polls.filter((p) => p.at > restartedAt && p.status === 200);
        let resumed = resumedAfterRestart();
        for (const until = Date.now() + 5_000; resumed.length === 0 && Date.now() < until; resumed = resumedAfterRestart()) await sleep(50);
        assert.ok(resumed.length > 0, 'a connection after the restart delivered');
        assert.ok(resumed[0]!.url.includes(`&mid=${cursors[i]}`), `reconnected with the mid cursor ${cursors[i]}: ${resumed[0]!.url}`);

        // A live message after it: anything repeated would have come before.
        await publishWithForm(page, `live ${mode.name}`);
        await waitShown(page, `live ${mode.name}`, 10_000);
        assert.equal(await shown(page, `live ${mode.name}`).getAttribute('data-replayed'), 'false');
        for (const text of [`before ${mode.name}`, `while away ${mode.name}`, `live ${mode.name}`]) {
          assert.equal(await shown(page, text).count(), 1, `${text} is shown once`);
        }
        await page.locator('#status[data-status=online]').waitFor({ timeout: 5_000 });
      });
    }
  });
});
