import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser, sign, SPEC } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Conformance cases of spec §8 for text mode (versions 1–3 and text mode of 4),
 * against the whole server on a real nats-server, asserting exact bytes and headers.
 */

const HOLD_MS = 1_500;
const FRAME = /^#!NGINXNMS!#\{"id":(\d+),"mid":"(\d{26})","channel":"-","tag":"(\d{3})","time":"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)","text":(.*)\}#!NGINXNME!#$/s;
const HELLO = '{"module_id":"test","command":"hello","params":{"a":1}}';
/** A WebSocket text frame: one or more whole `#!NGINXNMS!#…#!NGINXNME!#` blocks, nothing else. */
const FRAMES = /^(?:#!NGINXNMS!#\{[^\n]*?\}#!NGINXNME!#)+$/;

let nats: TestNats;
let t: TestApp;
/** The same server with Push server 2.0's fixed 400 ms coalescing window. */
let t400: TestApp;
let nc: NatsConnection;
const sub = (q: string): string => `${t.base}/bitrix/subws/?${q}`;

/** Publishes over the native NATS API to learn the mids (HTTP answers an empty 200). */
async function publishNats(channels: string[], body: string, expiry: number): Promise<string[]> {
  const reply = await nc.request('push.publish', JSON.stringify({ channels, body, expiry }), { timeout: 5_000 });
  const json = reply.json<{ mids?: string[]; error?: unknown }>();
  assert.ok(json.mids, `publish failed: ${JSON.stringify(json)}`);
  return json.mids;
}

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: HOLD_MS } });
  t400 = await startTestApp(nats.url, { processUniqueId: 'window-400', gateway: { longPollTimeoutMs: HOLD_MS, coalesceWindowMs: 400 } });
  nc = await connect({ servers: nats.url });
});

after(async () => {
  await nc?.close();
  await t?.stop();
  await t400?.stop();
  await nats?.stop();
});

describe('spec §8 text mode', () => {
  it('1: OPTIONS on the subscription route answers the fixed CORS pre-flight', async () => {
    const res = await fetch(sub(`CHANNEL_ID=${SPEC.channelId}`), { method: 'OPTIONS' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('access-control-allow-methods'), 'POST, GET, DELETE, OPTIONS');
    assert.equal(res.headers.get('access-control-allow-headers'), 'If-Modified-Since, If-None-Match');
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(await res.text(), '');
  });

  for (const [n, what, channelId] of [
    ['2', 'garbage', 'abc'],
    ['3', 'an unsigned private id while a key is configured', SPEC.priv],
    ['4', 'a public id with its public signature', `${SPEC.pub}.${SPEC.publicSig}`],
    ['5', 'priv:pub without a signature', `${SPEC.priv}:${SPEC.pub}`],
    ['6', 'the uppercase hex form of a valid token', `${SPEC.priv}.${SPEC.privSig}`.toUpperCase()],
    ['-', 'a forged signature', `${SPEC.priv}:${SPEC.pub}.${'0'.repeat(40)}`],
    ['-', 'a valid token followed by an invalid one', `${SPEC.priv}.${SPEC.privSig}/zzz`],
  ] as const) {
    it(`${n}: long poll with ${what} is refused with 400 4010`, async () => {
      const res = await fetch(sub(`CHANNEL_ID=${encodeURIComponent(channelId)}`));
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('content-type'), 'text/plain');
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-expose-headers'), 'Last-Message-Id');
      assert.equal(await res.text(), '4010: Wrong Channel Id.');
    });
  }

  it('7: a WebSocket upgrade with a bad CHANNEL_ID is refused byte for byte as the reference', async () => {
    const raw = await rawRequest(
      t.port,
      'GET /bitrix/subws/?CHANNEL_ID=zzz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    assert.equal(raw, 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\nContent-Length: 17\r\n\r\nWrong Channel Id.');
  });

  it('8: an unknown path answers 404 with CORS', async () => {
    const res = await fetch(`${t.base}/nothing`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(await res.text(), '');
  });

  it('9: a held long poll receives a text publish as one exact frame; the publish answers an empty 200', async () => {
    const user = newUser();
    const shared = newShared();
    const poll = longPoll(sub(`CHANNEL_ID=${user.token}/${shared.token}`));
    await new Promise((r) => setTimeout(r, 100));
    const pub = await publishText(t.base, user.priv, HELLO, 3600);
    assert.equal(pub.status, 200);
    assert.equal(pub.headers.get('content-type'), 'text/plain');
    assert.equal(pub.headers.get('access-control-allow-origin'), '*');
    assert.equal(await pub.text(), '');
    const res = await poll.result;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const body = res.body.toString('utf8');
    const m = FRAME.exec(body);
    assert.ok(m, `frame does not match the reference format: ${body}`);
    assert.equal(m[5], HELLO);
    assert.equal(Number(m[1]), Number(m[2]!.slice(10)), 'id is the counter part of mid');
    assert.ok(!Number.isNaN(Date.parse(m[4]!)));
  });

  it('10: a poll with no traffic ends with 304, the Expires sentinel and the newest stored id', async () => {
    const user = newUser();
    const [mid] = await publishNats([user.priv], HELLO, 3600);
    const empty = newUser();
    const [a, b] = await Promise.all([
      longPoll(sub(`CHANNEL_ID=${user.token}`)).result,
      longPoll(sub(`CHANNEL_ID=${empty.token}`)).result,
    ]);
    for (const res of [a, b]) {
      assert.equal(res.status, 304);
      assert.equal(res.headers.get('expires'), 'Thu, 01 Jan 1973 11:11:01 GMT');
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-expose-headers'), 'Last-Message-Id');
      assert.equal(res.headers.get('content-type'), 'text/plain');
      assert.equal(res.body.length, 0);
      assert.ok(res.tookMs >= HOLD_MS - 100, `answered after ${res.tookMs} ms`);
    }
    assert.equal(a.headers.get('last-message-id'), mid);
    assert.equal(b.headers.get('last-message-id'), '');
  });

  it('11: a poll whose mid is current ends with 304 carrying that mid', async () => {
    const user = newUser();
    const [mid] = await publishNats([user.priv], HELLO, 3600);
    const res = await longPoll(sub(`CHANNEL_ID=${user.token}&mid=${mid}`)).result;
    assert.equal(res.status, 304);
    assert.equal(res.headers.get('last-message-id'), mid);
  });

  it('12: a poll with an old mid answers at once with every stored message after it, in order; live-only ones are absent', async () => {
    const user = newUser();
    const shared = newShared();
    const [before] = await publishNats([newId()], '{"marker":1}', 60);
    const m1 = '{"module_id":"t","command":"m1","params":{}}';
    const m2 = '{"module_id":"t","command":"m2","params":{}}';
    const m3 = '{"module_id":"t","command":"m3","params":{}}';
    assert.equal((await publishText(t.base, user.priv, m1, 3600)).status, 200);
    assert.equal((await publishText(t.base, user.priv, m2)).status, 200);
    assert.equal((await publishText(t.base, shared.id, m3, 3600)).status, 200);
    const res = await longPoll(sub(`CHANNEL_ID=${user.token}/${shared.token}&mid=${before}`)).result;
    assert.equal(res.status, 200);
    assert.ok(res.tookMs < HOLD_MS / 2, `took ${res.tookMs} ms`);
    const frames = parseTextFrames(res.body.toString('utf8'));
    assert.deepEqual(frames.map((f) => f.text), [JSON.parse(m1), JSON.parse(m3)]);
    assert.ok(frames[0]!.mid < frames[1]!.mid);
    assert.ok(frames[0]!.mid > before!);
  });

  it('13: a malformed mid is ignored: the poll is held, then 304', async () => {
    const user = newUser();
    await publishNats([user.priv], HELLO, 3600);
    const res = await longPoll(sub(`CHANNEL_ID=${user.token}&mid=abc`)).result;
    assert.equal(res.status, 304);
    assert.ok(res.tookMs >= HOLD_MS - 100);
  });

  it('15, default coalescing: three publishes in a row arrive in order, the first in a frame of its own, each frame whole blocks', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const bodies = [1, 2, 3].map((i) => `{"module_id":"t","command":"c${i}","params":{}}`);
    for (const b of bodies) assert.equal((await publishText(t.base, user.priv, b, 60)).status, 200);
    await eventually('three messages', () => parseTextFrames(ws.text()).length >= 3);
    const frames = ws.frames;
    assert.ok(frames.every((f) => !f.binary));
    assert.deepEqual(parseTextFrames(frames[0]!.data.toString()).map((f) => f.text), [JSON.parse(bodies[0]!)]);
    for (const f of frames) assert.match(f.data.toString(), FRAMES);
    assert.deepEqual(parseTextFrames(ws.text()).map((f) => f.text), bodies.map((b) => JSON.parse(b)));
    ws.close();
  });

  it('15: with coalesceWindowMs 400 (Push server 2.0): three publishes within 50 ms arrive as the first alone, then the other two in one frame ~400 ms later', async () => {
    const user = newUser();
    const ws = await openWs(`${t400.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const bodies = [1, 2, 3].map((i) => `{"module_id":"t","command":"c${i}","params":{}}`);
    for (const b of bodies) assert.equal((await publishText(t400.base, user.priv, b, 60)).status, 200);
    const frames = await ws.waitFrames(2);
    assert.equal(frames[0]!.binary, false);
    assert.deepEqual(parseTextFrames(frames[0]!.data.toString()).map((f) => f.text), [JSON.parse(bodies[0]!)]);
    assert.deepEqual(parseTextFrames(frames[1]!.data.toString()).map((f) => f.text), [JSON.parse(bodies[1]!), JSON.parse(bodies[2]!)]);
    const gap = frames[1]!.at - frames[0]!.at;
    assert.ok(gap >= 300 && gap <= 1_000, `second frame after ${gap} ms`);
    assert.match(frames[1]!.data.toString(), /^#!NGINXNMS!#.*#!NGINXNME!##!NGINXNMS!#.*#!NGINXNME!#$/s);
    ws.close();
  });

  it('17: a WebSocket connecting with an old mid first receives every stored message after it, in one frame', async () => {
    const user = newUser();
    const [before] = await publishNats([user.priv], '{"module_id":"t","command":"old","params":{}}', 60);
    const later = [1, 2, 3].map((i) => `{"module_id":"t","command":"n${i}","params":{}}`);
    for (const b of later) await publishNats([user.priv], b, 60);
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${before}`);
    const [first] = await ws.waitFrames(1);
    assert.deepEqual(parseTextFrames(first!.data.toString()).map((f) => f.text), later.map((b) => JSON.parse(b)));
    ws.close();
  });

  it('36: a publish body one byte over maxPayload gets 413 and the server keeps serving; exactly maxPayload is accepted', async () => {
    const max = t.config.limits.maxPayloadBytes;
    const user = newUser();
    const over = await fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`, { method: 'POST', body: 'x'.repeat(max + 1) });
    assert.equal(over.status, 413);
    const exact = await fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`, { method: 'POST', body: `"${'x'.repeat(max - 2)}"` });
    assert.equal(exact.status, 200);
    const ok = await fetch(`${t.base}/nothing`);
    assert.equal(ok.status, 404);
  });

  it('36: a WebSocket frame over maxPayload closes that socket with 1009; others keep working', async () => {
    const user = newUser();
    const bad = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const good = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    bad.ws.send(Buffer.alloc(t.config.limits.maxPayloadBytes + 1));
    const closed = await bad.closed;
    assert.equal(closed.code, 1009);
    await publishText(t.base, user.priv, HELLO, 60);
    const [f] = await good.waitFrames(1);
    assert.deepEqual(parseTextFrames(f!.data.toString())[0]!.text, JSON.parse(HELLO));
    good.close();
  });

  it('37: a publish with an invalid CHANNEL_ID answers an empty 200 and publishes nothing', async () => {
    const res = await publishText(t.base, 'xyz', 'abc');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
    await eventually('an info log line', () => t.logs.find('publish ignored').some((l) => l.reason === 'invalid channel id'));
  });

  it('38: a publish with an empty body answers an empty 200 and delivers nothing', async () => {
    const user = newUser();
    const poll = longPoll(sub(`CHANNEL_ID=${user.token}`));
    await new Promise((r) => setTimeout(r, 100));
    const res = await publishText(t.base, user.priv, '');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
    assert.equal((await poll.result).status, 304);
  });

  it('39: one publish to P/S reaches subscribers of P and of S, and a subscriber of both exactly once', async () => {
    const user = newUser();
    const shared = newShared();
    const onlyP = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const onlyS = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`);
    const both = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    assert.equal((await publishText(t.base, `${user.priv}/${shared.id}`, HELLO, 60)).status, 200);
    const marker = '{"module_id":"t","command":"marker","params":{}}';
    assert.equal((await publishText(t.base, `${user.priv}/${shared.id}`, marker, 60)).status, 200);
    for (const c of [onlyP, onlyS, both]) {
      await eventually('both messages', () => parseTextFrames(c.text()).length >= 2);
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const c of [onlyP, onlyS, both]) {
      assert.deepEqual(parseTextFrames(c.text()).map((f) => f.text), [JSON.parse(HELLO), JSON.parse(marker)]);
      c.close();
    }
  });

  it('43: unknown query parameters change nothing', async () => {
    const user = newUser();
    const extra = 'tag=771&time=Tue%2C%2001%20Jan%202030%2000%3A00%3A01%20GMT&revision=19&rnd=12345&hostname=portal&clientId=abc&format=json';
    const poll = longPoll(sub(`CHANNEL_ID=${user.token}&${extra}`));
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(user.token)}&${extra}`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await publishText(t.base, `${user.priv}&hostname=portal&clientId=x`, HELLO, 60)).status, 200);
    const res = await poll.result;
    assert.equal(res.status, 200);
    assert.deepEqual(parseTextFrames(res.body.toString()).map((f) => f.text), [JSON.parse(HELLO)]);
    const [f] = await ws.waitFrames(1);
    assert.deepEqual(parseTextFrames(f!.data.toString()).map((x) => x.text), [JSON.parse(HELLO)]);
    ws.close();
  });

  it('percent-encoded CHANNEL_ID (as the official client sends it) is accepted on both transports', async () => {
    const user = newUser();
    const shared = newShared();
    const encoded = encodeURIComponent(`${user.token}/${shared.token}`);
    assert.match(encoded, /%3A.*%2F/);
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${encoded}&revision=19`);
    const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${encoded}&revision=19`);
    await new Promise((r) => setTimeout(r, 100));
    await publishText(t.base, shared.id, HELLO, 60);
    assert.equal((await poll.result).status, 200);
    await ws.waitFrames(1);
    ws.close();
  });
});

describe('spec §8 case 42: no security key configured', () => {
  let open: TestApp;
  before(async () => {
    open = await startTestApp(nats.url, { security: {}, gateway: { longPollTimeoutMs: HOLD_MS } });
  });
  after(() => open.stop());

  it('accepts an unsigned private id and refuses priv:pub with any signature', async () => {
    const priv = newId();
    const poll = longPoll(`${open.base}/bitrix/subws/?CHANNEL_ID=${priv}`);
    const refused = await fetch(`${open.base}/bitrix/subws/?CHANNEL_ID=${priv}:${newId()}.${sign('whatever')}`);
    assert.equal(refused.status, 400);
    assert.equal(await refused.text(), '4010: Wrong Channel Id.');
    await new Promise((r) => setTimeout(r, 100));
    await publishText(open.base, priv, HELLO, 60);
    const res = await poll.result;
    assert.equal(res.status, 200);
    assert.deepEqual(parseTextFrames(res.body.toString()).map((f) => f.text), [JSON.parse(HELLO)]);
  });
});
