import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser, sign, signRaw, TEST_KEY } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { decodeResponseBatch, hex, incomingMessages } from '../helpers/protobuf.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * Bad input gets the protocol's own answer, never a crash, a hang, or a lost message
 * for anyone else. Each test ends by checking the server still serves.
 */

const HOLD_MS = 1_000;
const HELLO = '{"module_id":"t","command":"hello","params":{}}';

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { limits: { maxPayloadBytes: 128 * 1024 }, gateway: { longPollTimeoutMs: HOLD_MS, maxOutboxBytes: 256 * 1024 } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

async function stillServing(): Promise<void> {
  const user = newUser();
  const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}`);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await publishText(t.base, user.priv, HELLO, 60)).status, 200);
  const res = await within('a delivery', poll.result, 5_000);
  assert.equal(res.status, 200);
}

function upgradeRequest(query: string): string {
  return (
    `GET /bitrix/subws/?${query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  );
}

describe('bad input', () => {
  it('a repeated CHANNEL_ID (which ended Push server 2.0) is refused on every route and the server stays up', async () => {
    const user = newUser();
    const twice = `CHANNEL_ID=${user.token}&CHANNEL_ID=${user.token}`;
    const lp = await fetch(`${t.base}/bitrix/sub/?${twice}`);
    assert.equal(lp.status, 400);
    assert.equal(await lp.text(), '4010: Wrong Channel Id.');
    const ws = await rawRequest(t.port, upgradeRequest(twice));
    assert.match(ws, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*Wrong Channel Id\.$/);
    const pub = await fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${user.priv}&CHANNEL_ID=${user.priv}`, { method: 'POST', body: HELLO });
    assert.equal(pub.status, 200);
    await stillServing();
  });

  it('malformed CHANNEL_ID variants are refused with 4010', async () => {
    const user = newUser();
    const variants = [
      '',
      '%zz',
      '%00',
      '/',
      `${user.priv}/`,
      `${user.priv}.${sign(user.priv)}.${sign(user.priv)}`,
      `${user.priv}:${user.pub}:${user.pub}.${sign(user.priv)}`,
      `${user.priv}.${sign(user.priv)}x`,
      `${user.priv} .${sign(user.priv)}`,
      `${user.priv}.${sign(user.priv, 'wrong-key')}`,
      `${user.priv}:${user.pub}.${sign(`${user.pub}:${user.priv}`)}`,
      'é'.repeat(40),
    ];
    for (const v of variants) {
      const res = await fetch(`${t.base}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(v)}`);
      assert.equal(res.status, 400, `CHANNEL_ID=${v}`);
      assert.equal(await res.text(), '4010: Wrong Channel Id.');
    }
    const noParam = await fetch(`${t.base}/bitrix/subws/`);
    assert.equal(noParam.status, 400);
    await stillServing();
  });

  it('forged signatures are refused on the WebSocket handshake', async () => {
    const user = newUser();
    for (const token of [`${user.priv}:${user.pub}.${'a'.repeat(40)}`, `${user.priv}.${sign(user.priv, 'other')}`]) {
      const raw = await rawRequest(t.port, upgradeRequest(`CHANNEL_ID=${token}`));
      assert.ok(raw.startsWith('HTTP/1.1 400 Bad Request\r\n'), raw);
    }
    const ws = new TestWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.priv}`);
    await assert.rejects(ws.opened, /handshake refused: 400/);
  });

  it('non-numeric, short, long and out-of-range mids neither crash nor break the poll', async () => {
    const user = newUser();
    for (const mid of ['-1', '1e25', 'abc', '0'.repeat(25), '9'.repeat(27), '9'.repeat(26), '0'.repeat(26), '%00', '０'.repeat(26)]) {
      const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${encodeURIComponent(mid)}`);
      const res = await within(`poll with mid=${mid}`, poll.result, HOLD_MS * 4);
      assert.ok([200, 304].includes(res.status), `mid=${mid}: ${res.status}`);
    }
    await stillServing();
  });

  it('very long query strings: too many tokens is 4010, beyond the header limit is refused by HTTP, the server stays up', async () => {
    const many = Array.from({ length: 150 }, () => newShared().token).join('/');
    const res = await fetch(`${t.base}/bitrix/subws/?CHANNEL_ID=${many}`);
    assert.equal(res.status, 400);
    assert.equal(await res.text(), '4010: Wrong Channel Id.');
    const huge = await rawRequest(t.port, `GET /bitrix/subws/?CHANNEL_ID=${'a'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.match(huge, /^HTTP\/1\.1 431 /);
    await stillServing();
  });

  it('garbled HTTP gets 400 and the connection is closed', async () => {
    const raw = await rawRequest(t.port, 'BLAH\r\n\r\n\0\0\0');
    assert.match(raw, /^HTTP\/1\.1 400 Bad Request/);
    await stillServing();
  });

  it('text frames sent on a text-mode WebSocket are ignored (spec case 30)', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    ws.ws.send('hello');
    ws.ws.send(Buffer.from([1, 2, 3]));
    ws.ws.send('#!NGINXNMS!#{}#!NGINXNME!#');
    await publishText(t.base, user.priv, HELLO, 60);
    const [f] = await ws.waitFrames(1);
    assert.deepEqual(parseTextFrames(f!.data.toString()).map((x) => x.text), [JSON.parse(HELLO)]);
    ws.close();
  });

  it('a client that never reads is disconnected once its outbox is full, and a reader on the same channel gets everything', async () => {
    const user = newUser();
    const reader = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const stalled: Socket = netConnect(t.port, '127.0.0.1');
    stalled.on('error', () => undefined);
    let handshake = '';
    await new Promise<void>((resolve) => {
      stalled.on('data', (chunk: Buffer) => {
        handshake += chunk.toString('latin1');
        if (handshake.includes('\r\n\r\n')) {
          stalled.pause(); // from here on it never reads
          resolve();
        }
      });
      stalled.write(upgradeRequest(`CHANNEL_ID=${user.token}`));
    });
    assert.match(handshake, /^HTTP\/1\.1 101 /);
    const payload = `{"module_id":"t","command":"big","params":{"pad":"${'x'.repeat(64 * 1024)}"}}`;
    const count = 200;
    for (let i = 0; i < count; i++) assert.equal((await publishText(t.base, user.priv, payload, 0)).status, 200);
    await eventually('the stalled client to be disconnected', () => t.logs.find('slow client disconnected').length > 0, 15_000);
    await eventually('every message at the reader', () => parseTextFrames(reader.text()).length === count, 15_000);
    stalled.destroy();
    reader.close();
    await stillServing();
  });

  it('the security key never appears in the logs, whatever was tried', () => {
    assert.ok(t.logs.find('subscription refused').length > 10, 'the tests above produced log lines');
    assert.ok(!t.logs.text().includes(TEST_KEY), 'the HMAC key was logged');
    assert.ok(t.logs.find('subscription refused').every((l) => l.level === 30), 'client misbehaviour is logged at info');
  });

  it('a flood of refused handshakes and aborted polls leaves nothing behind', async () => {
    const user = newUser();
    const aborted = Array.from({ length: 50 }, () => longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}`));
    const refused = Array.from({ length: 50 }, () => rawRequest(t.port, upgradeRequest('CHANNEL_ID=zzz')));
    await new Promise((r) => setTimeout(r, 100));
    for (const a of aborted) a.abort();
    await Promise.all(refused);
    await eventually('sessions to be released', () => t.app.gateway!.stats().pollings === 0);
    await stillServing();
    assert.equal(newId().length, 32);
  });
});

describe('a client that floods requests', () => {
  let small: TestApp;
  before(async () => {
    // A publisher with little room: a client allowed to fill it would get others refused.
    small = await startTestApp(nats.url, {
      publisher: { mailboxCapacity: 4, maxInFlight: 1 },
      gateway: { maxClientRequestsInFlight: 2 },
    });
  });
  after(() => small?.stop());

  it('is held back by TCP, not refused: every request is served in order and the backend keeps publishing', async () => {
    const alice = newUser();
    const bob = newUser();
    const a = await openWs(`${small.wsBase}/bitrix/subws/?CHANNEL_ID=${alice.token}&binaryMode=true`);
    const b = await openWs(`${small.wsBase}/bitrix/subws/?CHANNEL_ID=${bob.token}&binaryMode=true`);
    const to = [{ id: hex(bob.pub), isPrivate: false, signature: signRaw(`public:${bob.pub}`) }];
    const N = 300;
    const body = (n: number): string => `{"module_id":"t","command":"c","params":{"n":${n}}}`;
    for (let n = 0; n < N; n++) a.ws.send(incomingMessages([{ receivers: to, body: body(n), expiry: 0 }]));
    // The backend publishes in the middle of the flood and is not refused.
    const backend = await publishText(small.base, bob.priv, '{"n":"backend"}', 60);
    assert.equal(backend.status, 200, await backend.text());

    const bodies = (): string[] => b.frames.flatMap((f) => decodeResponseBatch(f.data).flatMap((r) => r.outgoingMessages ?? []).map((m) => m.body));
    await eventually('every client publish to reach bob', () => bodies().filter((x) => x !== '{"n":"backend"}').length >= N, 15_000);
    assert.deepEqual(bodies().filter((x) => x !== '{"n":"backend"}'), Array.from({ length: N }, (_, n) => body(n)));
    assert.ok(bodies().includes('{"n":"backend"}'));
    assert.equal(a.ws.readyState, a.ws.OPEN, 'the flooding client was not closed');
    a.close();
    b.close();
  });
});
