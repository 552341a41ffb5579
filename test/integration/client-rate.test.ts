import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser, signRaw, TEST_KEY, type TestUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { decodeResponseBatch, hex, incomingMessages } from '../helpers/protobuf.ts';
import { openWs } from '../helpers/ws-client.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Per-client request rates. Untrusted requests (binary WebSocket frames, POST
 * /bitrix/rest/) are counted per public id, the sender's signed identity
 * (limits.clientRequestsPerSec, burst limits.clientRequestBurst): a WebSocket over it
 * is read more slowly (nothing refused, nothing closed, so no reconnect), a POST gets
 * 429 with Retry-After (the official client does not retry a publish, whatever the
 * status). POST /bitrix/rest/ is also counted per client address when
 * limits.restRequestsPerIpPerSec is set.
 */

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats?.stop();
});

const body = (n: number): string => `{"module_id":"t","command":"c","params":{"n":${n}}}`;
const publishTo = (u: TestUser, n: number): Buffer =>
  incomingMessages([{ receivers: [{ id: hex(u.pub), isPrivate: false, signature: signRaw(`public:${u.pub}`) }], body: body(n), expiry: 0 }]);

async function limitedCount(t: TestApp, action: string, by: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.app.adminAddress!.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('jetpull_client_requests_limited_total{') && l.includes(`action="${action}"`) && l.includes(`by="${by}"`));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('requests per public id', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { limits: { clientRequestsPerSec: 2, clientRequestBurst: 3 } });
  });
  after(() => t?.stop());

  it('a binary WebSocket sending faster is slowed down: every request is served, in order, and the socket stays open', async () => {
    const alice = newUser();
    const bob = newUser();
    const a = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${alice.token}&binaryMode=true`);
    const b = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${bob.token}&binaryMode=true`);
    const N = 6;
    for (let n = 0; n < N; n++) a.ws.send(publishTo(bob, n));
    const bodies = (): string[] => b.frames.flatMap((f) => decodeResponseBatch(f.data).flatMap((r) => r.outgoingMessages ?? []).map((m) => m.body));
    await eventually('every request served', () => bodies().length >= N, 10_000);
    assert.deepEqual(bodies(), Array.from({ length: N }, (_, n) => body(n)));
    assert.equal(a.ws.readyState, a.ws.OPEN);
    assert.ok((await limitedCount(t, 'delayed', 'public-id')) >= 1, 'some requests waited for the rate');
    a.close();
    b.close();
  });

  it('POST /bitrix/rest/ over the rate: 429 with Retry-After; another public id is not affected', async () => {
    const alice = newUser();
    const bob = newUser();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, n) => fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${alice.token}`, { method: 'POST', body: publishTo(bob, n) })),
    );
    const statuses = answers.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 200).length >= 3, statuses.join(','));
    const limited = answers.filter((r) => r.status === 429);
    assert.ok(limited.length >= 1, statuses.join(','));
    assert.ok(Number(limited[0]!.headers.get('retry-after')) >= 1);
    const other = await fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${newUser().token}`, { method: 'POST', body: publishTo(bob, 99) });
    assert.equal(other.status, 200);
    assert.ok((await limitedCount(t, 'refused', 'public-id')) >= 1);
  });
});

describe('POST /bitrix/rest/ per client address', () => {
  let t: TestApp;
  before(async () => {
    // The test's loopback peer stands for nginx: its X-Real-IP names the client.
    t = await startTestApp(nats.url, { security: { key: TEST_KEY, trustedProxies: ['loopback'] }, limits: { restRequestsPerIpPerSec: 3 } });
  });
  after(() => t?.stop());

  it('counts by the address the proxy names; another address is not affected; the limit comes before any signature check', async () => {
    const bob = newUser();
    const post = (ip: string, token: string): Promise<Response> =>
      fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${token}`, { method: 'POST', body: publishTo(bob, 1), headers: { 'X-Real-IP': ip } });
    const answers = await Promise.all(Array.from({ length: 8 }, () => post('192.0.2.1', newUser().token)));
    const statuses = answers.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 429).length >= 1, statuses.join(','));
    assert.ok(statuses.filter((s) => s === 200).length >= 3, statuses.join(','));
    assert.equal((await post('192.0.2.2', newUser().token)).status, 200);
    // Unsigned garbage from the limited address is refused by the rate before it costs an HMAC.
    assert.equal((await post('192.0.2.1', 'zzz')).status, 429);
    assert.ok((await limitedCount(t, 'refused', 'ip')) >= 1);
  });
});
