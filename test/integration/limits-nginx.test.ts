import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { longPollFrom } from '../helpers/long-poll-client.ts';
import { startNginx, type TestNginx } from '../helpers/nginx.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';

/**
 * Limits per client address behind the real nginx with deploy/nginx/nginx.conf's
 * subscription locations, as in the compose stack: nginx connects from one address,
 * and jetpull, trusting it (security.trustedProxies), counts the clients it names in
 * X-Forwarded-For. Clients on 127.0.0.2 and 127.0.0.3 stand for two offices; nginx
 * reaches jetpull from 127.0.0.1, the one trusted address (trusting all of loopback
 * here would trust the clients too).
 */

let nats: TestNats;
let t: TestApp;
let nginx: TestNginx;
before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { security: { key: 'testkey', trustedProxies: ['127.0.0.1'] }, gateway: { maxConnectionsPerIp: 2, longPollTimeoutMs: 30_000 } });
  nginx = await startNginx(t.port);
});
after(async () => {
  await nginx?.stop();
  await t?.stop();
  await nats?.stop();
});

const refusedStatus = async (c: TestWs): Promise<number | undefined> => {
  await c.opened.catch(() => undefined);
  return c.refusal?.status;
};

describe('limits per address behind nginx', () => {
  it('each client address behind nginx has its own limit; a refusal reaches the client as 429 with Retry-After', async () => {
    const [u1, u2, u3] = [newUser(), newUser(), newUser()];
    const office1 = [await openWs(`${nginx.wsBase}/bitrix/subws/?CHANNEL_ID=${u1.token}`, { localAddress: '127.0.0.2' })];
    const heldPoll = longPollFrom(`${nginx.base}/bitrix/sub/?CHANNEL_ID=${u2.token}`, { localAddress: '127.0.0.2' });
    await eventually('the poll held', () => t.app.gateway!.stats().pollings === 1);
    const office2 = await openWs(`${nginx.wsBase}/bitrix/subws/?CHANNEL_ID=${u3.token}`, { localAddress: '127.0.0.3' });

    const third = new TestWs(`${nginx.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`, { localAddress: '127.0.0.2' });
    assert.equal(await refusedStatus(third), 429);
    assert.ok(Number(third.refusal!.headers['retry-after']) > 0, 'Retry-After passed through');
    assert.equal((await longPollFrom(`${nginx.base}/bitrix/sub/?CHANNEL_ID=${newUser().token}`, { localAddress: '127.0.0.2' }).result).status, 429);
    // What a client writes into X-Forwarded-For itself is not believed: nginx appends the address it saw.
    const forged = new TestWs(`${nginx.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`, { localAddress: '127.0.0.2', headers: { 'X-Forwarded-For': '198.51.100.1' } });
    assert.equal(await refusedStatus(forged), 429);
    const refused = t.logs.find('connection refused');
    assert.ok(refused.length >= 3 && refused.every((l) => l.address === '127.0.0.2' && l.reason === 'connections-per-ip'), JSON.stringify(refused));

    // The other office still connects, and everyone held gets their messages.
    const office2b = await openWs(`${nginx.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`, { localAddress: '127.0.0.3' });
    for (const u of [u1, u2, u3]) assert.equal((await publishText(t.base, u.priv, '{"module_id":"t","command":"c","params":{}}', 60)).status, 200);
    await office1[0]!.waitFrames(1);
    await office2.waitFrames(1);
    assert.equal((await heldPoll.result).status, 200);
    for (const c of [...office1, office2, office2b]) c.close();
  });
});
