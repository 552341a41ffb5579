import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser, sign, signRaw, SPEC } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { channelStatsRequest, decodeResponseBatch, hex, incomingMessages, requestBatch } from '../helpers/protobuf.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * Conformance cases of spec §8 for Push server 2.0 (queue server version 4):
 * binary mode, binary and client publishing, public channels, stats and limits.
 * Protobuf is built and read with the repository's push.proto.
 */

let nats: TestNats;
let t: TestApp;
/** The same server with Push server 2.0's fixed 400 ms coalescing window. */
let t400: TestApp;
let nc: NatsConnection;
const HELLO = '{"module_id":"test","command":"hello","params":{"a":1}}';

async function publishNats(channels: unknown[], body: string, expiry = 3600): Promise<string[]> {
  const reply = (await nc.request('push.publish', JSON.stringify({ channels, body, expiry }), { timeout: 5_000 })).json<{ mids: string[] }>();
  assert.ok(reply.mids, JSON.stringify(reply));
  return reply.mids;
}

function postBinary(path: string, body: Buffer): Promise<Response> {
  return fetch(`${t.base}${path}`, { method: 'POST', body });
}

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: 1_500 }, limits: { maxConnPerChannel: 2 } });
  t400 = await startTestApp(nats.url, { processUniqueId: 'window-400', gateway: { longPollTimeoutMs: 1_500, coalesceWindowMs: 400 } });
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await t?.stop();
  await t400?.stop();
  await nats?.stop();
});

describe('spec §8 binary mode and version 4', () => {
  it('14: a binary long poll with an old mid answers one ResponseBatch whose single Response lists every newer message', async () => {
    const user = newUser();
    const shared = newShared();
    const [start] = await publishNats([newId()], '{}');
    const m1 = await publishNats([user.priv], '{"n":1}', 60);
    const m2 = await publishNats([shared.id], '{"n":2}', 60);
    const res = await longPoll(`${t.base}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}&binaryMode=true&mid=${start}`).result;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const batch = decodeResponseBatch(res.body);
    assert.equal(batch.length, 1);
    const msgs = batch[0]!.outgoingMessages!;
    assert.deepEqual(msgs.map((m) => m.mid), [m1[0], m2[0]]);
    assert.deepEqual(msgs.map((m) => m.body), ['{"n":1}', '{"n":2}']);
    for (const m of msgs) {
      assert.equal(m.sender.type, 2);
      assert.equal(m.expiry, 60);
      assert.ok(Math.abs(m.created - Date.now() / 1000) < 60, `created ${m.created} is unix seconds`);
    }
  });

  it('a binary long poll receives a live message as protobuf', async () => {
    const user = newUser();
    const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&binaryMode=true`);
    await new Promise((r) => setTimeout(r, 100));
    await publishText(t.base, user.priv, HELLO, 60);
    const res = await poll.result;
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const [r] = decodeResponseBatch(res.body);
    assert.equal(r!.outgoingMessages![0]!.body, HELLO);
    assert.equal(r!.outgoingMessages![0]!.sender.type, 2);
  });

  it('16, default coalescing: three publishes arrive in order in binary frames, each a ResponseBatch of one Response per message, the first alone', async () => {
    const user = newUser();
    const text = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&binaryMode=true`);
    for (let i = 1; i <= 3; i++) assert.equal((await publishText(t.base, user.priv, `{"n":${i}}`, 60)).status, 200);
    const responses = await eventually('three messages', () => {
      const all = ws.frames.flatMap((f) => decodeResponseBatch(f.data));
      return all.length >= 3 && all;
    });
    assert.ok(ws.frames.every((f) => f.binary));
    assert.equal(decodeResponseBatch(ws.frames[0]!.data).length, 1);
    assert.ok(responses.every((r) => r.outgoingMessages!.length === 1));
    const all = responses.map((r) => r.outgoingMessages![0]!);
    assert.deepEqual(all.map((m) => m.body), ['{"n":1}', '{"n":2}', '{"n":3}']);
    for (const m of all) {
      assert.equal(m.sender.type, 2);
      assert.equal(m.expiry, 60);
      assert.ok(Math.abs(m.created - Date.now() / 1000) < 60, `created ${m.created}`);
    }
    await eventually('the text connection too', () => parseTextFrames(text.text()).length >= 3);
    text.close();
    ws.close();
  });

  it('16: with coalesceWindowMs 400 (Push server 2.0): three publishes arrive as two binary frames, the second a ResponseBatch of two Responses', async () => {
    const user = newUser();
    const text = await openWs(`${t400.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const ws = await openWs(`${t400.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&binaryMode=true`);
    for (let i = 1; i <= 3; i++) assert.equal((await publishText(t400.base, user.priv, `{"n":${i}}`, 60)).status, 200);
    const frames = await ws.waitFrames(2);
    assert.ok(frames.every((f) => f.binary));
    const first = decodeResponseBatch(frames[0]!.data);
    const second = decodeResponseBatch(frames[1]!.data);
    assert.equal(first.length, 1);
    assert.equal(second.length, 2);
    const all = [...first, ...second].map((r) => r.outgoingMessages![0]!);
    assert.deepEqual(all.map((m) => m.body), ['{"n":1}', '{"n":2}', '{"n":3}']);
    for (const m of all) {
      assert.equal(m.sender.type, 2);
      assert.equal(m.expiry, 60);
      // Seconds even while a text-mode connection shares the broadcast (the reference leaked ms here).
      assert.ok(Math.abs(m.created - Date.now() / 1000) < 60, `created ${m.created}`);
    }
    await text.waitFrames(2);
    text.close();
    ws.close();
  });

  it('18: a trusted binary publish to a public id reaches the connections that registered it', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const res = await postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([{ receivers: [{ id: hex(user.pub), isPrivate: false }], body: HELLO, expiry: 60, type: 'test_hello' }]));
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
    await ws.waitFrames(1);
    assert.deepEqual(parseTextFrames(ws.text()).map((f) => f.text), [JSON.parse(HELLO)]);
    ws.close();
  });

  it('the spec\'s PHP publish bytes (private receiver, expiry 60, type t_c) are accepted and delivered', async () => {
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${SPEC.priv}.${SPEC.privSig}&binaryMode=true`);
    const bytes = hex('0a4e0a4c0a4a0a140a10c4ca4238a0b923820dcc509a6f75849b10011a2b7b226d6f64756c655f6964223a2274222c22636f6d6d616e64223a2263222c22706172616d73223a7b7d7d203c2a03745f63');
    assert.equal((await postBinary('/bitrix/pub/?binaryMode=true&hostname=portal', bytes)).status, 200);
    const [f] = await ws.waitFrames(1);
    assert.equal(decodeResponseBatch(f!.data)[0]!.outgoingMessages![0]!.body, '{"module_id":"t","command":"c","params":{}}');
    ws.close();
  });

  it('19: a client publish over /bitrix/rest/ reaches the public channel with sender CLIENT and its public id, and is not replayable', async () => {
    const sender = newUser();
    const receiver = newUser();
    const [start] = await publishNats([newId()], '{}');
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${receiver.token}&binaryMode=true`);
    const res = await postBinary(
      `/bitrix/rest/?CHANNEL_ID=${sender.token}`,
      incomingMessages([{ receivers: [{ id: hex(receiver.pub), isPrivate: false, signature: signRaw(`public:${receiver.pub}`) }], body: HELLO, expiry: 0 }]),
    );
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 0);
    const [f] = await ws.waitFrames(1);
    const m = decodeResponseBatch(f!.data)[0]!.outgoingMessages![0]!;
    assert.deepEqual(m.sender, { type: 1, id: sender.pub });
    assert.equal(m.body, HELLO);
    const replay = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${receiver.token}&mid=${start}`).result;
    assert.equal(replay.status, 304, 'expiry 0: live only');
    ws.close();
  });

  const refusals: Array<[string, () => Promise<Response>, string]> = [
    ['20: a client without a public id', () => postBinary(`/bitrix/rest/?CHANNEL_ID=${SPEC.priv}.${SPEC.privSig}`, requestBatch({ serverStats: {} })), '4012: Public Channel Id is Required.'],
    ['21: a client asking for server stats', () => postBinary(`/bitrix/rest/?CHANNEL_ID=${newUser().token}`, requestBatch({ serverStats: {} })), '4014: Request command is not allowed.'],
    ['22: a client publishing to a private id', () => {
      const u = newUser();
      return postBinary(`/bitrix/rest/?CHANNEL_ID=${u.token}`, incomingMessages([{ receivers: [{ id: hex(u.priv), isPrivate: true, signature: signRaw(`public:${u.priv}`) }], body: '{}' }]));
    }, '4020: Private channel is not allowed.'],
    ['23: a client publishing with a wrong public signature', () => {
      const u = newUser();
      return postBinary(`/bitrix/rest/?CHANNEL_ID=${u.token}`, incomingMessages([{ receivers: [{ id: hex(u.pub), isPrivate: false, signature: signRaw('public:wrong') }], body: '{}' }]));
    }, '4021: Channel has an invalid signature.'],
    ['23: a client publishing without a public signature', () => {
      const u = newUser();
      return postBinary(`/bitrix/rest/?CHANNEL_ID=${u.token}`, incomingMessages([{ receivers: [{ id: hex(u.pub), isPrivate: false }], body: '{}' }]));
    }, '4021: Channel has an invalid signature.'],
    ['24: garbage bytes on the trusted route', () => postBinary('/bitrix/pub/?binaryMode=true', hex('0102030405')), '4013: Wrong Request Data.'],
    ['24: an empty body on the trusted route', () => postBinary('/bitrix/pub/?binaryMode=true', Buffer.alloc(0)), '4013: Wrong Request Data.'],
    ['24: a request with only the cloud variant\'s registration field', () => postBinary('/bitrix/pub/?binaryMode=true', hex('0a022200')), '4013: Wrong Request Data.'],
    ['25: a receiver id that is not 16 bytes', () => postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([{ receivers: [{ id: Buffer.from('wrong id'), isPrivate: true }], body: '{}' }])), '4019: Request has an invalid channel id.'],
    ['17: a message without receivers', () => postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([{ receivers: [], body: '{}' }])), '4017: No channels found.'],
    ['18: a message with too many receivers', () => postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([{ receivers: Array.from({ length: 101 }, () => ({ id: hex(newId()), isPrivate: true })), body: '{}' }])), '4018: Request exceeded the maximum number of channels.'],
    ['16: too many messages in one request', () => postBinary('/bitrix/pub/?binaryMode=true', incomingMessages(Array.from({ length: 101 }, () => ({ receivers: [{ id: hex(newId()), isPrivate: true }], body: '{}' })))), '4016: Request exceeded the maximum number of messages.'],
    ['27: channel stats without channels', () => fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=`), '4017: No channels found.'],
    ['28: channel stats for 101 ids', () => fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${Array.from({ length: 101 }, () => newId()).join('/')}`), '4018: Request exceeded the maximum number of channels.'],
    ['-: a client request with a bad CHANNEL_ID', () => postBinary('/bitrix/rest/?CHANNEL_ID=zzz', requestBatch({ serverStats: {} })), '4010: Wrong Channel Id.'],
  ];
  for (const [name, send, body] of refusals) {
    it(`${name} is refused with 400 "${body}"`, async () => {
      const res = await send();
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('content-type'), 'text/plain');
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(await res.text(), body);
    });
  }

  it('a refused binary publish stores nothing: every message is validated first', async () => {
    const user = newUser();
    const [start] = await publishNats([newId()], '{}');
    const res = await postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([
      { receivers: [{ id: hex(user.priv), isPrivate: true }], body: '{"n":1}', expiry: 60 },
      { receivers: [{ id: Buffer.from('short'), isPrivate: true }], body: '{"n":2}', expiry: 60 },
    ]));
    assert.equal(res.status, 400);
    const replay = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${start}`).result;
    assert.equal(replay.status, 304);
  });

  it('an IncomingMessagesRequest with zero messages is 200 and publishes nothing', async () => {
    const res = await postBinary('/bitrix/pub/?binaryMode=true', incomingMessages([]));
    assert.equal(res.status, 200);
  });

  for (const [n, what, frame, code, reason] of [
    ['26', '101 messages in one request', () => incomingMessages(Array.from({ length: 101 }, () => ({ receivers: [{ id: hex(newId()), isPrivate: false, signature: Buffer.alloc(20) }], body: '{}' }))), 4016, '4016: Request exceeded the maximum number of messages.'],
    ['27', 'channel stats with no channels', () => channelStatsRequest([]), 4017, '4017: No channels found.'],
    ['29', 'bytes that are no RequestBatch', () => hex('010203'), 4013, '4013: Wrong Request Data.'],
    ['-', 'a text frame', () => 'hello', 4013, '4013: Wrong Request Data.'],
    ['-', 'a message to a private id', () => incomingMessages([{ receivers: [{ id: hex(newId()), isPrivate: true }], body: '{}' }]), 4020, '4020: Private channel is not allowed.'],
    ['-', 'a message with a forged public signature', () => incomingMessages([{ receivers: [{ id: hex(newId()), isPrivate: false, signature: Buffer.alloc(20) }], body: '{}' }]), 4021, '4021: Channel has an invalid signature.'],
  ] as const) {
    it(`${n}: a binary WebSocket sending ${what} is closed with ${code}`, async () => {
      const user = newUser();
      const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&binaryMode=true`);
      ws.ws.send(frame());
      const closed = await within('the close', ws.closed, 5_000);
      assert.deepEqual(closed, { code, reason });
    });
  }

  it('a binary WebSocket without a public id is closed with 4012 when it sends a request', async () => {
    const shared = newShared();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}&binaryMode=true`);
    ws.ws.send(channelStatsRequest([{ id: hex(newId()), isPrivate: false }]));
    assert.deepEqual(await within('the close', ws.closed, 5_000), { code: 4012, reason: '4012: Public Channel Id is Required.' });
  });

  it('a client publish over a binary WebSocket reaches another user\'s public channel; channel stats come back as a frame', async () => {
    const alice = newUser();
    const bob = newUser();
    const a = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${alice.token}&binaryMode=true`);
    const b = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${bob.token}&binaryMode=true`);
    a.ws.send(incomingMessages([{ receivers: [{ id: hex(bob.pub), isPrivate: false, signature: signRaw(`public:${bob.pub}`) }], body: '{"module_id":"t","command":"hi","params":{}}', expiry: 0 }]));
    const [f] = await b.waitFrames(1);
    const m = decodeResponseBatch(f!.data)[0]!.outgoingMessages![0]!;
    assert.deepEqual(m.sender, { type: 1, id: alice.pub });
    a.ws.send(channelStatsRequest([{ id: hex(bob.pub), isPrivate: false, signature: signRaw(`public:${bob.pub}`) }]));
    const [stats] = await a.waitFrames(1);
    assert.deepEqual(decodeResponseBatch(stats!.data)[0]!.channelStats, [{ id: bob.pub, isPrivate: false, isOnline: true }]);
    a.close();
    b.close();
  });

  it('31: GET /bitrix/pub/ lists the online private ids only; none online is {"infos":[]}', async () => {
    const user = newUser();
    const shared = newShared();
    const one = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    const two = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    const offline = newId();
    const res = await fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${user.priv}/${shared.id}/${offline}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(await res.text(), `{"infos":[{"channel":"${user.priv}","subscribers":1},{"channel":"${shared.id}","subscribers":1}]}`);
    const none = await fetch(`${t.base}/bitrix/pub/?CHANNEL_ID=${newId()}/${newId()}`);
    assert.equal(await none.text(), '{"infos":[]}');
    one.close();
    two.close();
  });

  it('32: binary channel stats answer in request order with isOnline and isPrivate', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const res = await postBinary('/bitrix/pub/?binaryMode=true', channelStatsRequest([
      { id: hex(user.priv), isPrivate: true },
      { id: hex(user.pub), isPrivate: false },
      { id: Buffer.alloc(16), isPrivate: true },
    ]));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(decodeResponseBatch(Buffer.from(await res.arrayBuffer()))[0]!.channelStats, [
      { id: user.priv, isPrivate: true, isOnline: true },
      { id: user.pub, isPrivate: false, isOnline: true },
      { id: '0'.repeat(32), isPrivate: true, isOnline: false },
    ]);
    ws.close();
  });

  it('33: GET /server-stat/ answers a JSON array with the reference fields', async () => {
    const res = await fetch(`${t.base}/server-stat/`);
    assert.equal(res.status, 200);
    const stats = (await res.json()) as Array<Record<string, unknown>>;
    assert.ok(Array.isArray(stats) && stats.length >= 1);
    const own = stats.find((s) => s.processUniqueId === t.config.processUniqueId)!;
    for (const key of ['pid', 'date', 'processUniqueId', 'channels', 'limits', 'clusterMode', 'websockets', 'pollings', 'daily']) {
      assert.ok(key in own, `missing ${key}`);
    }
    assert.deepEqual(own.limits, { maxPayload: 1_048_576, maxConnPerChannel: 2, maxMessagesPerRequest: 100, maxChannelsPerRequest: 100 });
    const daily = own.daily as { requests: Record<string, number>; messages: Record<string, number> };
    assert.ok(daily.requests.channelStats! >= 1);
    assert.ok(daily.messages.test_hello! >= 1, JSON.stringify(daily));
    assert.ok(Math.abs((own.date as number) - Date.now()) < 5_000);
  });

  it('34: trusted serverStats answers the same array as protobuf JSON', async () => {
    const res = await postBinary('/bitrix/pub/?binaryMode=true', hex('0a021a00'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    const [r] = decodeResponseBatch(Buffer.from(await res.arrayBuffer()));
    const stats = JSON.parse(r!.serverStats!) as Array<{ processUniqueId: string }>;
    assert.ok(stats.some((s) => s.processUniqueId === t.config.processUniqueId));
  });

  it('35: with maxConnPerChannel=2 a third connection closes the oldest with 4029; the others keep working', async () => {
    const user = newUser();
    const first = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const second = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const third = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    assert.deepEqual(await within('the close', first.closed, 5_000), { code: 4029, reason: '4029: Too many connections' });
    await publishText(t.base, user.priv, HELLO, 60);
    await second.waitFrames(1);
    await third.waitFrames(1);
    // Long polling: a held poll that becomes the oldest is answered 429.
    const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}`);
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const fifth = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const res = await poll.result;
    assert.equal(res.status, 429);
    assert.equal(res.body.toString(), '4029: Too many connections');
    for (const c of [second, third, fourth, fifth]) c.close();
  });

  it('shared channels (no public id) are not limited', async () => {
    const shared = newShared();
    const clients = await Promise.all(Array.from({ length: 4 }, () => openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`)));
    await publishText(t.base, shared.id, HELLO, 60);
    for (const c of clients) {
      await c.waitFrames(1);
      c.close();
    }
  });
});

describe('spec §8 case 41: WebSocket keep-alive', () => {
  let pinging: TestApp;
  before(async () => {
    pinging = await startTestApp(nats.url, { gateway: { pingIntervalMs: 300 } });
  });
  after(() => pinging.stop());

  it('terminates a socket that does not answer pings, keeps one that does, and delivers while a pong is awaited', async () => {
    const user = newUser();
    const silent = await openWs(`${pinging.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`, { autoPong: false });
    const alive = await openWs(`${pinging.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    let pinged = false;
    silent.ws.on('ping', () => (pinged = true));
    await eventually('a ping', () => pinged, 2_000);
    // A pong is owed now; a message sent meanwhile is still delivered (the reference dropped it).
    await publishText(pinging.base, user.priv, HELLO, 60);
    await silent.waitFrames(1);
    const closed = await within('termination', silent.closed, 3_000);
    assert.equal(closed.code, 1006);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(alive.ws.readyState, alive.ws.OPEN);
    await publishText(pinging.base, user.priv, HELLO, 60);
    await alive.waitFrames(2);
    alive.close();
  });
});

describe('spec §8 case 40: processes share nothing but NATS', () => {
  let gateway: TestApp;
  let publisher: TestApp;
  before(async () => {
    gateway = await startTestApp(nats.url, { role: 'gateway', processUniqueId: 'gw-a', storage: { onlineTtlSec: 2, onlineDeltaSec: 1 } });
    publisher = await startTestApp(nats.url, { role: 'publisher', processUniqueId: 'pub-b', storage: { onlineTtlSec: 2, onlineDeltaSec: 1 } });
  });
  after(async () => {
    await publisher.stop();
    await gateway.stop();
  });

  it('a publish on a publisher-only process reaches a subscriber on a gateway; presence is visible there within 2 s and gone after its TTL', async () => {
    const user = newUser();
    const ws = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&binaryMode=true`);
    const started = Date.now();
    await eventually('online on the other process', async () => {
      const res = await fetch(`${publisher.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`);
      return (await res.text()).includes(user.priv);
    }, 2_000);
    assert.ok(Date.now() - started < 2_000);
    // A publish to the public id through the publisher reaches the gateway's client.
    assert.equal((await fetch(`${publisher.base}/bitrix/pub/?binaryMode=true`, {
      method: 'POST',
      body: incomingMessages([{ receivers: [{ id: hex(user.pub), isPrivate: false }], body: HELLO, expiry: 60 }]),
    })).status, 200);
    const [f] = await ws.waitFrames(1);
    assert.equal(decodeResponseBatch(f!.data)[0]!.outgoingMessages![0]!.body, HELLO);
    // Both processes appear in the server stats of either.
    await eventually('both processes in /server-stat/', async () => {
      const ids = ((await (await fetch(`${publisher.base}/server-stat/`)).json()) as Array<{ processUniqueId: string }>).map((s) => s.processUniqueId);
      return ids.includes('gw-a') && ids.includes('pub-b');
    }, 5_000);
    ws.close();
    await eventually('offline after the TTL', async () => {
      const res = await fetch(`${publisher.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`);
      return (await res.text()) === '{"infos":[]}';
    }, 8_000, 200);
  });

  it('the publisher-only process does not serve subscriptions, the gateway-only process does not serve publishing', async () => {
    const user = newUser();
    assert.equal((await fetch(`${publisher.base}/bitrix/sub/?CHANNEL_ID=${user.token}`)).status, 404);
    assert.equal((await publishText(gateway.base, user.priv, HELLO, 60)).status, 404);
    assert.equal(sign('x').length, 40);
  });
});
