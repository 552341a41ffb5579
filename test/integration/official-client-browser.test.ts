import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startBrowser, type BrowserHarness, type PageTraffic } from '../helpers/browser.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { buildPullConfig, type Transport } from '../helpers/official-client/index.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * The official pull client (`@bitrix24/b24jssdk@2.2.0`) in headless Chromium, on a
 * page served from another origin than jetpull, as on a portal (official-client.md
 * §10, §12 checks 10, 11 and 32): the browser enforces CORS on the long poll (the
 * client must be able to read `Last-Message-Id` from a cross-origin 304) and sends
 * its page's `Origin` on the WebSocket upgrade. Versions 3 (text) and 4 (protobuf),
 * over WebSocket and long polling.
 */

const HOLD_MS = 1_000;
const MODULE = 'application';

interface PageState {
  __got: Array<{ command: string; params: Record<string, unknown>; extra: Record<string, unknown>; info: { type: string; moduleId: string } }>;
  __startPull(config: unknown, moduleId: string): Promise<string>;
}

let nats: TestNats;
let t: TestApp;
let browser: BrowserHarness;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: HOLD_MS } });
  browser = await startBrowser();
});

after(async () => {
  await browser?.stop();
  await t?.stop();
  await nats?.stop();
});

async function publish(channel: string, command: string, params: Record<string, unknown>): Promise<void> {
  const body = JSON.stringify({ module_id: MODULE, command, params, extra: { server_time_unix: Math.floor(Date.now() / 1000), revision_web: 19 } });
  const res = await publishText(t.base, channel, body, 3600);
  assert.equal(res.status, 200, await res.text());
}

/** Every poll after the first 304 carries the `Last-Message-Id` that 304 gave (readable cross-origin only with Expose-Headers). */
function checkPollsResume(traffic: PageTraffic): void {
  const i = traffic.polls.findIndex((p) => p.status === 304);
  assert.ok(i >= 0, `a poll ended with 304: ${JSON.stringify(traffic.polls)}`);
  const mid = traffic.polls[i]!.lastMessageId;
  assert.match(mid ?? '', /^\d{26}$/, 'the 304 carried Last-Message-Id');
  const next = traffic.polls[i + 1];
  assert.ok(next, 'the client polled again after the 304');
  assert.ok(next.url.includes(`mid=${mid}`), `the next poll resumes from ${mid}: ${next.url}`);
}

for (const version of [3, 4, 5]) {
  for (const transport of ['websocket', 'longpolling'] as Transport[]) {
    describe(`official client in Chromium, version ${version}, ${transport}`, () => {
      it('receives backend publishes on a page of another origin, once each and in order', async () => {
        const user = newUser();
        const shared = newShared();
        // A stored message first, so the first poll's 304 hands the client a mid to resume from.
        if (transport === 'longpolling') await publish(user.priv, 'seed', {});
        const { page, traffic } = await browser.newPage(t.base);
        assert.notEqual(new URL(browser.origin).port, String(t.port), 'the page is cross-origin');

        const config = buildPullConfig({ base: t.base, wsBase: t.wsBase, user, shared, version, transport });
        const mode = await page.evaluate(([cfg, m]) => (globalThis as unknown as PageState).__startPull(cfg, m), [config, MODULE] as const);

        if (transport === 'websocket') {
          assert.equal(mode, version === 5 ? 'json-rpc' : version === 4 ? 'protobuf' : 'text');
          assert.equal(traffic.sockets.length, 1, 'one WebSocket, accepted with the page origin');
          assert.ok(traffic.sockets[0]!.startsWith(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=`));
          assert.equal(traffic.sockets[0]!.includes('binaryMode=true'), version === 4);
          assert.equal(traffic.sockets[0]!.includes('jsonRpc=true'), version === 5);
        } else {
          await eventually('a poll answered 304 and the client polled again', () => traffic.polls.some((p, i) => p.status === 304 && traffic.polls.length > i + 1), 5 * HOLD_MS);
          checkPollsResume(traffic);
        }

        // One alone, then three in a row: over long polling the later ones reach the
        // server between two polls and come back by mid.
        await publish(user.priv, 'test_event', { n: 1 });
        await page.waitForFunction(() => (globalThis as unknown as PageState).__got.some((e) => e.command === 'test_event'), null, { timeout: 8_000 });
        await publish(user.priv, 'test_event', { n: 2 });
        await publish(shared.id, 'test_event', { n: 3 });
        await publish(user.priv, 'test_event', { n: 4 });
        await page.waitForFunction(() => (globalThis as unknown as PageState).__got.filter((e) => e.command === 'test_event').length >= 4, null, { timeout: 8_000 });
        await new Promise((r) => setTimeout(r, 500));

        const got = (await page.evaluate(() => (globalThis as unknown as PageState).__got)).filter((e) => e.command === 'test_event');
        assert.deepEqual(got.map((e) => e.params.n), [1, 2, 3, 4]);
        assert.deepEqual(got[0]!.info, { type: 'server', moduleId: MODULE });
        assert.equal(got[0]!.extra.revision_web, 19);
        if (transport === 'longpolling') {
          assert.ok(traffic.polls.every((p) => p.status === 200 || p.status === 304), `only 200 and 304: ${traffic.polls.map((p) => p.status).join(',')}`);
        }
        await page.close();
      });
    });
  }
}
