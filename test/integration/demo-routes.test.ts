import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { sign } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * The demo's routes on the admin listener: absent unless admin.demo is on; when on,
 * the client config a portal would hand a demo user, and a publish that reaches that
 * user's channel. The page itself in a browser: demo-page.test.ts.
 */

interface DemoConfig {
  config: {
    server: Record<string, unknown>;
    channels: { private: { id: string; public_id?: string } };
  };
  user: { userId: number; privateId: string };
  backendPublishUrl: string | null;
  pageOrigin: string;
  pageOriginAllowed: boolean;
}

let nats: TestNats;
let off: TestApp;
let on: TestApp;
let restricted: TestApp;
const admin = (t: TestApp): string => `http://127.0.0.1:${t.app.adminAddress!.port}`;

before(async () => {
  nats = await startTestNats();
  off = await startTestApp(nats.url);
  on = await startTestApp(nats.url, { admin: { port: 0, demo: true } });
  restricted = await startTestApp(nats.url, { admin: { port: 0, demo: true }, security: { key: 'testkey', allowedOrigins: ['https://portal.example.com'] } });
});

after(async () => {
  await off?.stop();
  await on?.stop();
  await restricted?.stop();
  await nats?.stop();
});

async function demoConfig(query: string, t = on): Promise<DemoConfig> {
  const res = await fetch(`${admin(t)}/demo/config?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as DemoConfig;
}

describe('demo routes', () => {
  it('are 404 when admin.demo is off, the default', async () => {
    assert.equal(off.config.admin.demo, false);
    for (const [method, path] of [['GET', '/demo'], ['GET', '/demo/'], ['GET', '/demo/client.js'], ['GET', '/demo/config'], ['GET', '/demo/online'], ['POST', '/demo/publish']] as const) {
      const res = await fetch(`${admin(off)}${path}`, { method, ...(method === 'POST' && { body: '{}' }) });
      assert.equal(res.status, 404, `${method} ${path}`);
    }
    assert.equal((await fetch(`${admin(off)}/healthz`)).status, 200, 'the admin listener itself answers');
  });

  it('serve the page and the client config: the public listener, a channel id signed with the key', async () => {
    const page = await fetch(`${admin(on)}/demo`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/demo\/client\.js">/);

    const { config, user, backendPublishUrl } = await demoConfig('user=7&version=3&transport=longpolling');
    assert.equal(user.userId, 7);
    assert.equal(config.server.version, 3);
    assert.equal(config.server.websocket_enabled, false);
    assert.equal(config.server.long_polling, `${on.base}/bitrix/subws/`);
    assert.equal(config.server.websocket, `${on.wsBase}/bitrix/subws/`);
    const [priv, rest] = config.channels.private.id.split(':');
    assert.equal(priv, user.privateId);
    const [pub, sig] = rest!.split('.');
    assert.equal(sig, sign(`${priv}:${pub}`), 'signed with the configured key');
    assert.equal(config.channels.private.public_id, `${pub}.${sign(`public:${pub}`)}`);
    assert.equal(backendPublishUrl, `${on.base}/bitrix/pub/?CHANNEL_ID=${priv}`);

    const again = await demoConfig('user=7&version=4');
    assert.equal(again.config.channels.private.id, config.channels.private.id, 'the same user gets the same channel');
    assert.equal(again.config.server.version, 4);
    assert.equal(again.config.server.websocket_enabled, true);
    assert.notEqual((await demoConfig('user=8')).user.privateId, user.privateId, 'another user another channel');

    assert.equal((await demoConfig('user=7')).pageOrigin, admin(on));
    assert.equal((await demoConfig('user=7')).pageOriginAllowed, true, 'no allow-list: every origin');

    for (const bad of ['version=5', 'version=2', 'transport=sse', 'user=0', 'user=x']) {
      assert.equal((await fetch(`${admin(on)}/demo/config?${bad}`)).status, 400, bad);
    }
  });

  it('say so when security.allowedOrigins leaves out the page, whose subscriptions it then refuses', async () => {
    const { config, pageOrigin, pageOriginAllowed } = await demoConfig('user=7', restricted);
    assert.equal(pageOriginAllowed, false);
    const poll = await fetch(`${restricted.base}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(config.channels.private.id)}`, { headers: { Origin: pageOrigin } });
    assert.equal(poll.status, 403, 'the public listener refuses the page as the config said');
  });

  it('publish to the demo user as /bitrix/pub/ does, and report the channel online while it is subscribed', async () => {
    const { config } = await demoConfig('user=9&version=3');
    assert.deepEqual(await (await fetch(`${admin(on)}/demo/online?user=9`)).json(), { online: false });
    const ws = await openWs(`${on.wsBase}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(config.channels.private.id)}`);
    const body = JSON.stringify({ module_id: 'demo', command: 'message', params: { text: 'from the demo route' } });
    const res = await fetch(`${admin(on)}/demo/publish?user=9`, { method: 'POST', body, headers: { 'Message-Expiry': '60' } });
    assert.equal(res.status, 200, await res.clone().text());
    const { mid } = (await res.json()) as { mid: string };
    const [frame] = await ws.waitFrames(1);
    const [msg] = parseTextFrames(frame!.data.toString());
    assert.equal(msg!.mid, mid, 'the answer names the stored mid');
    assert.deepEqual(msg!.text, JSON.parse(body));
    await eventually('the channel online', async () => ((await (await fetch(`${admin(on)}/demo/online?user=9`)).json()) as { online: boolean }).online);
    ws.ws.close();

    assert.equal((await fetch(`${admin(on)}/demo/publish?user=9`, { method: 'POST' })).status, 400, 'an empty body');
    assert.equal((await fetch(`${admin(on)}/demo/publish?user=9`)).status, 405);
  });
});
