import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newShared, newUser, sign, type TestUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import {
  startOfficialClient,
  type DecodedWireMessage,
  type OfficialClient,
  type OfficialClientOptions,
  type Transport,
} from '../helpers/official-client/index.ts';
import { decodeResponseBatch } from '../helpers/protobuf.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * The official Bitrix pull client (`@bitrix24/b24jssdk@2.2.0`, B24PullClientManager)
 * run headless against jetpull with server version 4 (`binaryMode=true`, protobuf),
 * over WebSocket and over long polling (official-client.md §4, §5.2, §5.5, §12
 * checks 7–9; spec §3.4, §5.3, §3.8): backend delivery, replay after a dropped
 * connection, client publishing to another user's public channel (binary WebSocket
 * frames, or `POST /bitrix/rest/` from the long-polling connector) and the refusal
 * of a forged public signature with 4021.
 */

const HOLD_MS = 2_000;
const MODULE = 'application';

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: HOLD_MS } });
});

after(async () => {
  await t?.stop();
  await nats?.stop();
});

// ---------------------------------------------------------------------------
// Protobuf: what the server sends is read with the repository's helpers; what the
// client sends (RequestBatch) is decoded here with the same push.proto.

const root = protobuf.loadSync(new URL('../../src/wire/push.proto', import.meta.url).pathname);
const RequestBatch = root.lookupType('RequestBatch');

interface SentMessage {
  receivers: Array<{ id: string; isPrivate: boolean; signature: string }>;
  body: unknown;
  expiry: number;
}

/** The messages of a client's RequestBatch (one `incomingMessages` request), ids and signatures as hex. */
function decodeSent(bytes: Buffer): SentMessage[] {
  const obj = RequestBatch.toObject(RequestBatch.decode(bytes), { defaults: true, oneofs: true, longs: Number }) as {
    requests: Array<Record<string, any>>;
  };
  assert.equal(obj.requests.length, 1, 'one request per batch');
  const req = obj.requests[0]!;
  assert.equal(req.command, 'incomingMessages');
  return (req.incomingMessages.messages as Array<Record<string, any>>).map((m) => ({
    receivers: (m.receivers as Array<Record<string, any>>).map((r) => ({
      id: Buffer.from(r.id).toString('hex'),
      isPrivate: r.isPrivate as boolean,
      signature: Buffer.from(r.signature).toString('hex'),
    })),
    body: JSON.parse(m.body as string),
    expiry: m.expiry as number,
  }));
}

/** `wireMessages()` decoder for v4: every OutgoingMessage of a ResponseBatch, with its sender, created and expiry. */
function decodeV4(data: Buffer): DecodedWireMessage[] {
  return decodeResponseBatch(data)
    .flatMap((r) => r.outgoingMessages ?? [])
    .map((m) => ({ mid: m.mid, text: JSON.parse(m.body), meta: { sender: m.sender, created: m.created, expiry: m.expiry } }));
}

// ---------------------------------------------------------------------------

/** A body as the PHP module publishes it (spec §3.3). */
function eventBody(command: string, params: Record<string, unknown>): string {
  return JSON.stringify({
    module_id: MODULE,
    command,
    params,
    extra: { server_time_unix: Math.floor(Date.now() / 1000), revision_web: 19 },
  });
}

async function publish(channels: string, command: string, params: Record<string, unknown>, expirySec = 3600): Promise<void> {
  const res = await publishText(t.base, channels, eventBody(command, params), expirySec);
  const text = await res.text();
  assert.equal(res.status, 200, `publish answered ${res.status}: ${text}`);
}

function channelParam(user: TestUser, shared: { token: string }): string {
  return encodeURIComponent(`${user.token}/${shared.token}`);
}

/**
 * Starts a version-4 client (client publishing enabled) for a user. Over long
 * polling, as in the version-3 file, a message is stored first so the first poll's
 * 304 hands the client a `Last-Message-Id`: every later poll carries a `mid`, and a
 * message that reaches the server between two polls is replayed by the next one.
 */
async function startV4(
  transport: Transport,
  user: TestUser,
  shared: { id: string; token: string },
  extra: Partial<OfficialClientOptions> = {},
): Promise<OfficialClient> {
  if (transport === 'longpolling') await publish(user.priv, 'seed', {});
  const oc = await startOfficialClient({
    base: t.base,
    wsBase: t.wsBase,
    user,
    shared,
    version: 4,
    publishEnabled: true,
    transport,
    ...extra,
  });
  try {
    const first = oc.connections[0]!;
    assert.equal(first.transport, transport);
    const base = transport === 'websocket' ? t.wsBase : t.base;
    assert.equal(first.url, `${base}/bitrix/subws/?CHANNEL_ID=${channelParam(user, shared)}&binaryMode=true&revision=19`);
    if (transport === 'longpolling') await checkFirstPolls(oc);
  } catch (err) {
    await oc.stop();
    throw err;
  }
  return oc;
}

async function checkFirstPolls(oc: OfficialClient): Promise<void> {
  const first = oc.pollAnswers[0];
  assert.ok(first, 'the first poll was answered');
  assert.equal(first.status, 304);
  assert.equal(first.headers.expires, 'Thu, 01 Jan 1973 11:11:01 GMT');
  const lmid = String(first.headers['last-message-id']);
  assert.match(lmid, /^\d{26}$/);
  await oc.waitForConnections(2);
  assert.ok(oc.connections[1]!.url.includes(`&binaryMode=true&mid=${lmid}&revision=19`), `second poll resumes: ${oc.connections[1]!.url}`);
}

function testEvents(oc: OfficialClient): OfficialClient['events'] {
  return oc.events.filter((e) => e.command === 'test_event');
}

/** Every message on the wire of a v4 client; every frame must be binary protobuf. */
function v4Wire(oc: OfficialClient): ReturnType<OfficialClient['wireMessages']> {
  for (const f of oc.frames) assert.equal(f.binary, true, `a ${f.transport} frame in text: ${String(f.data)}`);
  return oc.wireMessages(decodeV4);
}

// ---------------------------------------------------------------------------

for (const transport of ['websocket', 'longpolling'] as const) {
  describe(`official client, server version 4, ${transport}`, () => {
    it('connects with binaryMode=true and receives a backend publish as protobuf (sender BACKEND, created in seconds)', async (ctx) => {
      const user = newUser();
      const shared = newShared();
      const oc = await startV4(transport, user, shared);
      ctx.after(() => oc.stop());
      assert.equal(oc.client.getDebugInfo()['WebSocket mode'], transport === 'websocket' ? 'protobuf' : '-');
      assert.ok(oc.isConnected());

      const sentSec = Math.floor(Date.now() / 1000);
      await publish(user.priv, 'test_event', { n: 1 }, 3600);
      await oc.waitForEvents(1);
      const afterSec = Math.ceil(Date.now() / 1000);
      const got = testEvents(oc);
      assert.equal(got.length, 1, JSON.stringify(oc.debugInfo()));
      const ev = got[0]!;
      assert.deepEqual(ev.params, { n: 1 });
      assert.deepEqual(ev.info, { type: 'server', moduleId: MODULE });
      assert.equal(ev.extra.revision_web, 19);
      assert.deepEqual(ev.extra.sender, { type: 2, id: '' }, 'extra.sender: BACKEND, no id');
      assert.deepEqual(oc.clientEvents, [], 'a backend message is not a client message');
      assert.deepEqual(oc.handlerErrors, []);

      // On the wire: binary ResponseBatches only; one message with a 26-digit mid.
      assert.ok(oc.frames.length >= 1);
      const wire = v4Wire(oc);
      assert.equal(wire.length, 1, JSON.stringify(wire));
      const m = wire[0]!;
      assert.equal(m.transport, transport);
      assert.match(m.mid, /^\d{26}$/);
      assert.deepEqual(m.text, {
        module_id: MODULE,
        command: 'test_event',
        params: { n: 1 },
        extra: { server_time_unix: ev.extra.server_time_unix, revision_web: 19 },
      });
      const meta = m.meta as { sender: { type: number; id: string }; created: number; expiry: number };
      assert.deepEqual(meta.sender, { type: 2, id: '' }, 'sender BACKEND');
      assert.ok(meta.created >= sentSec && meta.created <= afterSec, `created in unix seconds: ${meta.created} not in [${sentSec}, ${afterSec}]`);
      assert.equal(meta.expiry, 3600);

      if (transport === 'longpolling') {
        const answers = oc.pollAnswers.filter((a) => a.status === 200);
        assert.equal(answers.length, 1, JSON.stringify(oc.debugInfo()));
        assert.equal(answers[0]!.headers['content-type'], 'application/octet-stream');
        assert.ok(answers[0]!.headers['access-control-allow-origin'], 'readable cross-origin');
        // One XHR, one poll at a time: answer i belongs to poll i, and the client
        // goes on polling from that message's mid.
        const i = oc.pollAnswers.indexOf(answers[0]!);
        const next = (await oc.waitForConnections(i + 2))[i + 1]!;
        assert.ok(next.url.includes(`&binaryMode=true&mid=${m.mid}&revision=19`), `the next poll resumes from ${m.mid}: ${next.url}`);
      }
    });

    it('after a dropped connection, gets every message published meanwhile exactly once, then live ones', async (ctx) => {
      const user = newUser();
      const shared = newShared();
      const oc = await startV4(transport, user, shared);
      ctx.after(() => oc.stop());

      await publish(user.priv, 'test_event', { n: 0 });
      await oc.waitForEvents(1);
      const resumeMid = v4Wire(oc).at(-1)!.mid;

      const connectionsBefore = oc.connections.length;
      await oc.disconnect({ holdReconnect: true });
      assert.equal(oc.isConnected(), false);

      await publish(user.priv, 'test_event', { n: 1 });
      await publish(user.priv, 'test_event', { n: 2 });
      await publish(shared.id, 'test_event', { n: 3 });
      assert.equal(testEvents(oc).length, 1, 'nothing arrives while disconnected');

      oc.releaseReconnect();
      await oc.waitForEvents(4, 5_000);
      const reconnect = oc.connections[connectionsBefore];
      assert.ok(reconnect, 'the client reconnected by itself');
      assert.equal(reconnect.transport, transport);
      assert.ok(reconnect.url.includes(`&binaryMode=true&mid=${resumeMid}&revision=19`), `the reconnection resumes from ${resumeMid}: ${reconnect.url}`);

      await publish(user.priv, 'test_event', { n: 4 });
      await oc.waitForEvents(5, 5_000);

      const ns = testEvents(oc).map((e) => e.params.n);
      assert.deepEqual(ns, [0, 1, 2, 3, 4], `each message once, in order: ${JSON.stringify(oc.debugInfo())}`);
      const wire = v4Wire(oc);
      const mids = wire.map((w) => w.mid);
      assert.equal(mids.length, 5, `messages on the wire: ${JSON.stringify(wire)}`);
      assert.equal(new Set(mids).size, 5, `no message sent twice: ${mids.join(', ')}`);
      assert.deepEqual([...mids].sort(), mids, 'mids increase');
      for (const w of wire) assert.equal((w.meta as { sender: { type: number } }).sender.type, 2);
      assert.deepEqual(oc.handlerErrors, []);
      assert.ok(oc.isConnected());
    });
  });
}

// ---------------------------------------------------------------------------

describe('official client, server version 4, client publishing', () => {
  const combos: Array<{ from: Transport; to: Transport; how: 'string' | 'object' | 'users' }> = [
    { from: 'websocket', to: 'websocket', how: 'string' },
    { from: 'websocket', to: 'longpolling', how: 'object' },
    { from: 'longpolling', to: 'websocket', how: 'users' },
    { from: 'longpolling', to: 'longpolling', how: 'string' },
  ];
  for (const { from, to, how } of combos) {
    const via = from === 'websocket' ? 'a binary WebSocket frame' : 'POST /bitrix/rest/';
    const addressed = how === 'users' ? 'sendMessage(userIds) with pull.channel.public.list' : `sendMessageToChannels (public channel as ${how})`;
    it(`A on ${from} → B on ${to}: ${addressed} via ${via} reaches B's type:'client' subscriber with sender CLIENT and A's public id`, async (ctx) => {
      const alice = newUser();
      const bob = newUser();
      const aliceShared = newShared();
      const b = await startV4(to, bob, newShared(), { userId: 2 });
      ctx.after(() => b.stop());
      const a = await startV4(from, alice, aliceShared, { userId: 1, publicUsers: { 2: bob } });
      ctx.after(() => a.stop());

      const [bobPub, bobSig] = bob.publicAddress.split('.') as [string, string];
      const params = { x: 1, from: from, to: to };
      if (how === 'users') await a.client.sendMessage([2], MODULE, 'cli_cmd', params, 60);
      else await a.client.sendMessageToChannels([how === 'string' ? bob.publicAddress : ({ publicId: bobPub, signature: bobSig } as unknown as string)], MODULE, 'cli_cmd', params, 60);

      const [ev] = await b.waitForClientEvents(1, 8_000);
      assert.equal(ev!.command, 'cli_cmd');
      assert.deepEqual(ev!.params, params);
      assert.deepEqual(ev!.info, { type: 'client', moduleId: MODULE });
      assert.deepEqual(ev!.extra.sender, { type: 1, id: alice.pub });
      assert.equal(b.events.filter((e) => e.command === 'cli_cmd').length, 0, 'a client message does not go to the server subscribers');
      assert.deepEqual(b.handlerErrors, []);
      assert.deepEqual(a.handlerErrors, []);

      // B's wire: one protobuf message with sender CLIENT and A's public id.
      const wire = v4Wire(b);
      assert.equal(wire.length, 1, JSON.stringify(wire));
      assert.deepEqual((wire[0]!.meta as { sender: unknown }).sender, { type: 1, id: alice.pub });
      assert.deepEqual(wire[0]!.text, { module_id: MODULE, command: 'cli_cmd', params });

      // A's side: protobuf RequestBatch to B's public id with the public signature.
      const expectedSent: SentMessage[] = [
        { receivers: [{ id: bob.pub, isPrivate: false, signature: bobSig }], body: { module_id: MODULE, command: 'cli_cmd', params }, expiry: 60 },
      ];
      if (from === 'websocket') {
        assert.equal(a.publishes.length, 0);
        assert.equal(a.sentFrames.length, 1);
        assert.equal(a.sentFrames[0]!.binary, true);
        assert.deepEqual(decodeSent(a.sentFrames[0]!.data as Buffer), expectedSent);
      } else {
        assert.equal(a.sentFrames.length, 0);
        assert.equal(a.publishes.length, 1, JSON.stringify(a.debugInfo()));
        const p = a.publishes[0]!;
        assert.equal(p.method, 'POST');
        // The client-safe endpoint of the config (`server.publish`), signed like a subscription.
        assert.equal(p.url, `${t.base}/bitrix/rest/?CHANNEL_ID=${channelParam(alice, aliceShared)}`);
        assert.deepEqual(decodeSent(p.body), expectedSent);
        const answered = await eventually('the publish answer', () => p.status !== undefined && p);
        assert.equal(answered.status, 200, `POST /bitrix/rest/ answered ${String(answered.status)}: ${answered.response?.toString('utf8')}`);
        assert.equal(answered.response!.length, 0, 'success is an empty body');
      }
      if (how === 'users') assert.ok(a.restCalls.includes('pull.channel.public.list'), `REST calls: ${a.restCalls.join(', ')}`);
    });
  }

  it('a forged public signature over WebSocket: A is closed with 4021, B gets nothing; A reconnects and a valid message gets through', async (ctx) => {
    const alice = newUser();
    const bob = newUser();
    const b = await startV4('websocket', bob, newShared(), { userId: 2 });
    ctx.after(() => b.stop());
    const a = await startV4('websocket', alice, newShared(), { userId: 1 });
    ctx.after(() => a.stop());

    // B's public id with the HMAC of another message (A's own public channel).
    const forged = `${bob.pub}.${sign(`public:${alice.pub}`)}`;
    assert.notEqual(forged, bob.publicAddress);
    await a.client.sendMessageToChannels([forged], MODULE, 'cli_cmd', { n: 'forged' }, 60);

    const close = await a.waitForClose(4021);
    assert.deepEqual({ code: close.code, reason: close.reason }, { code: 4021, reason: '4021: Channel has an invalid signature.' });
    assert.equal(a.sentFrames.length, 1);
    assert.deepEqual(decodeSent(a.sentFrames[0]!.data as Buffer)[0]!.receivers, [{ id: bob.pub, isPrivate: false, signature: sign(`public:${alice.pub}`) }]);

    // The client reconnects by itself (any close code but 4010: ~0.5 s).
    const reconnected = await a.waitForConnections(2);
    assert.equal(reconnected[1]!.transport, 'websocket');
    await eventually('A back online', () => a.isConnected());

    // A valid message sent after the forged one is the only one B ever gets.
    await a.client.sendMessageToChannels([bob.publicAddress], MODULE, 'cli_cmd', { n: 'valid' }, 60);
    const [ev] = await b.waitForClientEvents(1);
    assert.deepEqual(ev!.params, { n: 'valid' });
    assert.deepEqual(ev!.extra.sender, { type: 1, id: alice.pub });
    assert.equal(b.clientEvents.length, 1, JSON.stringify(b.debugInfo()));
    const wire = v4Wire(b);
    assert.deepEqual(
      wire.map((w) => (w.text as { params: unknown }).params),
      [{ n: 'valid' }],
      'the forged message never reached B',
    );
    assert.ok(b.isConnected(), 'B was not affected');
    assert.deepEqual(b.closes, []);
  });

  it('a forged public signature over long polling: POST /bitrix/rest/ is refused with 400 "4021: …", B gets nothing', async (ctx) => {
    const alice = newUser();
    const bob = newUser();
    const b = await startV4('websocket', bob, newShared(), { userId: 2 });
    ctx.after(() => b.stop());
    const a = await startV4('longpolling', alice, newShared(), { userId: 1 });
    ctx.after(() => a.stop());

    const forged = `${bob.pub}.${sign(`public:${alice.pub}`)}`;
    await a.client.sendMessageToChannels([forged], MODULE, 'cli_cmd', { n: 'forged' }, 60);
    const refused = await eventually('the forged publish answered', () => a.publishes[0]?.status !== undefined && a.publishes[0]);
    assert.equal(refused.status, 400, `answered ${String(refused.status)}: ${JSON.stringify(a.debugInfo())}`);
    assert.equal(refused.response!.toString('utf8'), '4021: Channel has an invalid signature.');

    // Long polling goes on (a refused publish is not a connection error).
    assert.ok(a.isConnected());

    await a.client.sendMessageToChannels([bob.publicAddress], MODULE, 'cli_cmd', { n: 'valid' }, 60);
    const [ev] = await b.waitForClientEvents(1);
    assert.deepEqual(ev!.params, { n: 'valid' });
    assert.equal(b.clientEvents.length, 1);
    assert.deepEqual(
      v4Wire(b).map((w) => (w.text as { params: unknown }).params),
      [{ n: 'valid' }],
      'the forged message never reached B',
    );
    await eventually('the valid publish answered', () => a.publishes[1]?.status !== undefined);
    assert.equal(a.publishes[1]!.status, 200);
  });
});
