import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { publishText } from '../helpers/backend.ts';
import { newShared, newUser, type TestUser } from '../helpers/channels.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { buildPullConfig, startOfficialClient, type OfficialClient, type OfficialClientOptions, type Transport } from '../helpers/official-client/index.ts';
import { backendRpcQuery, pullToken } from '../helpers/pull-token.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * The official pull client (`@bitrix24/b24jssdk@2.2.0`) with server version 5
 * (`jsonRpc=true`, official-client.md §4, §5.3–5.5, checks 17–21): delivery as
 * JSON-RPC `incoming.message`, the client's `mack:<mid>`, text `ping`/`pong`, replay
 * by mid after a dropped connection, and the methods the client calls.
 */

const HOLD_MS = 2_000;
const PING_MS = 1_000;
const MODULE = 'application';

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: HOLD_MS, jsonRpcPingIntervalMs: PING_MS } });
});

after(async () => {
  await t?.stop();
  await nats?.stop();
});

function eventBody(command: string, params: Record<string, unknown>): string {
  return JSON.stringify({ module_id: MODULE, command, params, extra: { server_time_unix: Math.floor(Date.now() / 1000), revision_web: 19 } });
}

async function publish(channels: string, command: string, params: Record<string, unknown>, expirySec = 3600): Promise<void> {
  const res = await publishText(t.base, channels, eventBody(command, params), expirySec);
  assert.equal(res.status, 200, await res.text());
}

async function startV5(transport: Transport, user: TestUser, extra: Partial<OfficialClientOptions> = {}): Promise<OfficialClient> {
  const shared = newShared();
  if (transport === 'longpolling') await publish(user.priv, 'seed', {});
  const oc = await startOfficialClient({ base: t.base, wsBase: t.wsBase, user, shared, version: 5, transport, ...extra });
  const base = transport === 'websocket' ? t.wsBase : t.base;
  assert.equal(oc.connections[0]!.url, `${base}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(`${user.token}/${shared.token}`)}&jsonRpc=true&revision=19`);
  return oc;
}

function testEvents(oc: OfficialClient): OfficialClient['events'] {
  return oc.events.filter((e) => e.command === 'test_event');
}

/** The JSON-RPC texts the server sent (parsed), `ping`s left out. */
function rpcFrames(oc: OfficialClient): unknown[] {
  return oc.frames.filter((f) => String(f.data) !== 'ping' && String(f.data) !== '').map((f) => JSON.parse(String(f.data)) as unknown);
}

function sentTexts(oc: OfficialClient): string[] {
  return [...oc.sentFrames.map((f) => String(f.data)), ...oc.publishes.map((p) => String((p as { body?: unknown }).body ?? ''))];
}

/** A call the SDK has no public method for, through its JSON-RPC adapter. */
function call(oc: OfficialClient, method: string, params: unknown): Promise<unknown> {
  const adapter = (oc.client as unknown as { _jsonRpcAdapter: { executeOutgoingRpcCommand(m: string, p: unknown): Promise<unknown> } })._jsonRpcAdapter;
  return adapter.executeOutgoingRpcCommand(method, params);
}

for (const transport of ['websocket', 'longpolling'] as const) {
  describe(`official client, server version 5, ${transport}`, () => {
    it('receives a backend publish as incoming.message (sender BACKEND) and acknowledges it with mack:<mid>', async (ctx) => {
      const user = newUser();
      const oc = await startV5(transport, user);
      ctx.after(() => oc.stop());
      if (transport === 'websocket') assert.equal(oc.client.getDebugInfo()['WebSocket mode'], 'json-rpc');
      await publish(user.priv, 'test_event', { n: 1 });
      await oc.waitForEvents(1);
      await eventually('the event', () => testEvents(oc).length === 1, 5_000, 20);
      const ev = testEvents(oc)[0]!;
      assert.deepEqual(ev.params, { n: 1 });
      assert.deepEqual(ev.info, { type: 'server', moduleId: MODULE });
      assert.deepEqual(ev.extra.sender, { type: 2, id: '' });
      assert.deepEqual(oc.handlerErrors, []);
      const delivered = rpcFrames(oc).flatMap((f) => (Array.isArray(f) ? f : [f])) as Array<{ jsonrpc: string; method: string; params: { mid: string; body: { command: string } } }>;
      const mine = delivered.find((r) => r.params?.body?.command === 'test_event');
      assert.ok(mine, JSON.stringify(delivered));
      assert.equal(mine.jsonrpc, '2.0');
      assert.equal(mine.method, 'incoming.message');
      assert.match(mine.params.mid, /^\d{26}$/);
      await eventually('mack sent', () => sentTexts(oc).includes(`mack:${mine.params.mid}`), 5_000, 20);
      if (transport === 'longpolling') {
        // Over long polling the ack is a POST to the client route, answered 200 and never published.
        const mack = oc.publishes.find((p) => String(p.body) === `mack:${mine.params.mid}`)!;
        assert.match(mack.url, /\/bitrix\/rest\/\?CHANNEL_ID=/);
        await eventually('mack answered', () => mack.status !== undefined, 5_000, 20);
        assert.equal(mack.status, 200);
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(testEvents(oc).length, 1, 'the ack was not delivered as a message');
      for (const f of oc.frames) assert.equal(f.binary, false, 'every frame is text');
    });

    it('replays what was published while the connection was down, once each, by mid', async (ctx) => {
      const user = newUser();
      const oc = await startV5(transport, user);
      ctx.after(() => oc.stop());
      await publish(user.priv, 'test_event', { n: 1 });
      await eventually('first', () => testEvents(oc).length === 1, 5_000, 20);
      await oc.disconnect({ holdReconnect: true });
      await publish(user.priv, 'test_event', { n: 2 });
      await publish(user.priv, 'test_event', { n: 3 });
      const before = oc.connections.length;
      oc.releaseReconnect();
      await eventually('all three', () => testEvents(oc).length >= 3, 10_000, 20);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(testEvents(oc).map((e) => e.params.n), [1, 2, 3]);
      assert.match(oc.connections[before]!.url, /&jsonRpc=true&mid=\d{26}&revision=19$/);
    });
  });
}

describe('official client, server version 5, websocket keep-alive and calls', () => {
  it('gets a text ping at the configured interval and answers pong; stays connected', async (ctx) => {
    const oc = await startV5('websocket', newUser());
    ctx.after(() => oc.stop());
    await eventually('two pings', () => oc.frames.filter((f) => String(f.data) === 'ping').length >= 2, 3 * PING_MS + 2_000, 50);
    await eventually('pong', () => sentTexts(oc).includes('pong'), 2_000, 20);
    assert.ok(oc.isConnected());
    assert.deepEqual(oc.closes, []);
  });

  it('ping, listChannels, getUsersLastSeen and subscribeStatusChange are answered; unknown methods get -32601', async (ctx) => {
    const user = newUser();
    const oc = await startV5('websocket', user);
    ctx.after(() => oc.stop());
    assert.deepEqual(await oc.client.ping(), {});
    const listed = (await call(oc, 'listChannels', {})) as { channels: Array<{ id: string; isPrivate: boolean }> };
    assert.ok(listed.channels.some((c) => c.id === user.priv && c.isPrivate), JSON.stringify(listed));
    assert.deepEqual(await call(oc, 'getUsersLastSeen', { userList: [7, 8] }), {});
    await assert.rejects(call(oc, 'noSuchMethod', {}), (e: { code: number }) => e.code === -32601);
    // Accepted (the client re-sends it on every connect); a CHANNEL_ID connection names no portal, so it is never told.
    assert.deepEqual(await call(oc, 'subscribeStatusChange', { userId: 42 }), {});
    await assert.rejects(call(oc, 'subscribeStatusChange', { userId: 'x' }), (e: { code: number }) => e.code === -32602);
    assert.ok(oc.isConnected(), 'a refused call leaves the connection open');
    assert.deepEqual(oc.closes, []);
  });

  it("publish to another user's public channel reaches them as a client message; a forged signature is refused with 4021 and the socket stays open", async (ctx) => {
    const alice = newUser();
    const bob = newUser();
    const a = await startV5('websocket', alice);
    ctx.after(() => a.stop());
    const b = await startV5('websocket', bob);
    ctx.after(() => b.stop());
    await a.client.sendMessageToChannels([bob.publicAddress], MODULE, 'cli_cmd', { x: 1 }, 60);
    const got = await b.waitForClientEvents(1);
    assert.deepEqual(got[0]!.params, { x: 1 });
    assert.deepEqual(got[0]!.extra.sender, { type: 1, id: alice.pub });
    const forged = `${bob.pub}.${'0'.repeat(40)}`;
    await assert.rejects(a.client.sendMessageToChannels([forged], MODULE, 'cli_cmd', { x: 2 }, 60), (e: { code: number; message: string }) => e.code === 4021 && e.message.startsWith('4021: '));
    await assert.rejects(a.client.sendMessage([5], MODULE, 'cli_cmd', { x: 3 }, 60), (e: { code: number }) => e.code === -32602);
    assert.ok(a.isConnected());
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.clientEvents.length, 1, 'nothing else reached bob');
  });
});

describe('server version 5, what a client may send', () => {
  it('garbage gets JSON-RPC errors, the connection stays open and still receives messages', async (ctx) => {
    const user = newUser();
    const c = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(user.token)}&jsonRpc=true&revision=19`);
    ctx.after(() => c.close());
    const sent: Array<string | Buffer> = [
      '{oops',
      '[1]',
      '{"jsonrpc":"2.0","method":"","id":1}',
      'mack:zz',
      Buffer.from([0x0a, 0x02, 0xff, 0x00]),
      '\u0000'.repeat(10),
      '{"jsonrpc":"2.0","method":"publish","params":{"channelList":"x"},"id":2}',
      '{"jsonrpc":"2.0","method":"publish","params":{"channelList":[],"body":{"module_id":"m","command":"c","params":{}}},"id":3}',
      '{"jsonrpc":"2.0","method":"ping","params":{},"id":4}',
      '{"jsonrpc":"2.0","method":"ping","params":{}}',
    ];
    for (const f of sent) c.ws.send(f);
    const replies = () => c.frames.map((f) => f.data.toString()).filter((d) => d !== 'ping').map((d) => JSON.parse(d) as { id: unknown; error?: { code: number; message: string }; result?: unknown });
    await eventually('nine replies', () => replies().length >= 9, 5_000, 20);
    const r = replies();
    assert.deepEqual(r.map((x) => [x.id, x.error?.code ?? 'ok']), [
      [null, -32700],
      [null, -32600],
      [null, -32600],
      [null, -32600],
      [null, -32700],
      [null, -32700],
      [2, -32602],
      [3, 4017],
      [4, 'ok'],
    ]);
    assert.equal(r[7]!.error!.message, '4017: No channels found.');
    await publish(user.priv, 'test_event', { n: 9 });
    await eventually('the message', () => c.text().includes('"incoming.message"'), 5_000, 20);
    assert.equal(c.ws.readyState, c.ws.OPEN);
  });
});

/**
 * A portal set to queue server version 5: its config carries a JWT (`sub` = user id,
 * `chan` = the shared channel, no private channel), the client connects with
 * `token=`, and the portal publishes to user ids over `POST /bitrix/api/`
 * (`Bitrix\Pull\JsonRpcTransport`: requests without ids, signed body).
 */
describe('server version 5 with a JWT: a portal publishing to users over /bitrix/api/', () => {
  const HOST = `host${Date.now()}`;

  async function backend(body: string, query = backendRpcQuery(body, HOST)): Promise<{ status: number; text: string }> {
    const res = await fetch(`${t.base}/bitrix/api/?${query}`, { method: 'POST', body });
    return { status: res.status, text: await res.text() };
  }

  const publishRequest = (params: Record<string, unknown>): string => JSON.stringify({ jsonrpc: '2.0', method: 'publish', params });

  async function startJwtClient(userId: number): Promise<{ oc: OfficialClient; shared: { id: string; token: string }; token: string }> {
    const shared = newShared();
    const nowSec = Math.floor(Date.now() / 1000);
    const token = pullToken({ iss: HOST, iat: nowSec, exp: nowSec + 43_200, sub: String(userId), chan: shared.id });
    // The tap finds the client's connections by a string of their URL: the token's signature.
    const user = { ...newUser(), priv: token.split('.')[2]! };
    const config = buildPullConfig({ base: t.base, wsBase: t.wsBase, user, shared, version: 5 }) as unknown as Record<string, any>;
    delete config.channels.private;
    config.jwt = token;
    config.exp = nowSec + 43_200;
    const oc = await startOfficialClient({ base: t.base, wsBase: t.wsBase, user, shared, version: 5, userId, config: config as never });
    assert.equal(oc.connections[0]!.url, `${t.wsBase}/bitrix/subws/?token=${encodeURIComponent(token)}&jsonRpc=true&revision=19`);
    return { oc, shared, token };
  }

  it("connects with token=, gets what the portal publishes to its user id (user_params and dictionary merged into params) and to its channel", async (ctx) => {
    const uid = 100 + Math.floor(Math.random() * 1e6);
    const { oc, shared } = await startJwtClient(uid);
    ctx.after(() => oc.stop());
    const body = { module_id: MODULE, command: 'test_event', params: { n: 1 }, extra: { server_time_unix: Math.floor(Date.now() / 1000) } };
    const one = await backend(`[${publishRequest({ userList: [uid], body, expiry: 86_400, type: 'application_test_event' })}]`);
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(JSON.parse(one.text), [{ jsonrpc: '2.0', id: null, result: {} }]);
    await eventually('to the user', () => testEvents(oc).length === 1, 5_000, 20);
    assert.deepEqual(testEvents(oc)[0]!.params, { n: 1 });
    assert.deepEqual(testEvents(oc)[0]!.extra.sender, { type: 2, id: '' });

    const two = await backend(`[${publishRequest({ userList: [uid, uid + 1], body: { ...body, params: { n: 2 } }, user_params: { [uid]: { mine: true } }, dictionary: { d: 1 }, expiry: 60 })}]`);
    assert.equal(two.status, 200, two.text);
    await eventually('user params', () => testEvents(oc).length === 2, 5_000, 20);
    assert.deepEqual(testEvents(oc)[1]!.params, { n: 2, mine: true, d: 1 });

    assert.equal((await backend(publishRequest({ channelList: [shared.id], body: { ...body, params: { n: 3 } } }))).status, 200);
    await eventually('to the channel', () => testEvents(oc).length === 3, 5_000, 20);
    assert.deepEqual(testEvents(oc).map((e) => e.params.n), [1, 2, 3]);
    assert.deepEqual(oc.handlerErrors, []);
  });

  it("getUsersLastSeen, the portal's and the client's: 0 for a user online now, unknown users left out; a replay after a drop reaches the user", async (ctx) => {
    const uid = 100 + Math.floor(Math.random() * 1e6);
    const { oc } = await startJwtClient(uid);
    ctx.after(() => oc.stop());
    const seen = await backend(JSON.stringify({ jsonrpc: '2.0', method: 'getUsersLastSeen', params: { userList: [uid, uid + 7] } }));
    assert.equal(seen.status, 200);
    assert.deepEqual(JSON.parse(seen.text), { jsonrpc: '2.0', id: null, result: { [uid]: 0 } });
    // The client's own call knows the users of its token's portal: another tab of the same user is online.
    assert.deepEqual(await call(oc, 'getUsersLastSeen', { userList: [uid, uid + 7] }), { [uid]: 0 });
    const body = { module_id: MODULE, command: 'test_event', params: { n: 1 } };
    await backend(publishRequest({ userList: [uid], body, expiry: 3600 }));
    await eventually('first', () => testEvents(oc).length === 1, 5_000, 20);
    await oc.disconnect({ holdReconnect: true });
    await backend(publishRequest({ userList: [uid], body: { ...body, params: { n: 2 } }, expiry: 3600 }));
    const before = oc.connections.length;
    oc.releaseReconnect();
    await eventually('replayed', () => testEvents(oc).length === 2, 10_000, 20);
    assert.match(oc.connections[before]!.url, /^.*\?token=[^&]+&jsonRpc=true&mid=\d{26}&revision=19$/);
  });

  it('refuses a wrong signature (4026), a missing host id, and publishes nothing; bad calls get JSON-RPC errors', async () => {
    const body = publishRequest({ userList: [5], body: { module_id: MODULE, command: 'x', params: {} } });
    const forged = await backend(body, `hostId=${HOST}&signature=${'0'.repeat(40)}`);
    assert.deepEqual(forged, { status: 400, text: '4026: Wrong request signature.' });
    assert.equal((await backend(body, backendRpcQuery(body, HOST).replace(/hostId=[^&]*&/, ''))).status, 400);
    const calls = [
      publishRequest({ body: { module_id: MODULE, command: 'x', params: {} } }),
      publishRequest({ userList: ['admin'], body: {} }),
      publishRequest({ userList: [5], body: 'text' }),
      JSON.stringify({ jsonrpc: '2.0', method: 'dropEverything', params: {} }),
    ];
    const res = await backend(`[${calls.join(',')}]`);
    assert.equal(res.status, 200);
    assert.deepEqual((JSON.parse(res.text) as Array<{ error: { code: number } }>).map((r) => r.error.code), [-32602, -32602, -32602, -32601]);
    assert.deepEqual(JSON.parse((await backend('{oops')).text).error.code, -32700);
    // The module does not split a message to many users: more than maxChannelsPerRequest (100) is fine, over maxRpcReceivers is refused whole.
    const many = (n: number): string => publishRequest({ userList: Array.from({ length: n }, (_, i) => 5_000_000 + i), body: { module_id: MODULE, command: 'x', params: {} } });
    assert.deepEqual(JSON.parse((await backend(many(150))).text), { jsonrpc: '2.0', id: null, result: {} });
    assert.equal(JSON.parse((await backend(many(10_001))).text).error.code, -32602);
  });

  it('an expired or forged token is refused at the handshake (4010)', async () => {
    const nowSec = Math.floor(Date.now() / 1000);
    for (const token of [pullToken({ iss: HOST, iat: nowSec - 50_000, exp: nowSec - 1, sub: '5' }), pullToken({ iss: HOST, exp: nowSec + 60, sub: '5' }, 'not-the-key')]) {
      const res = await fetch(`${t.base}/bitrix/subws/?token=${encodeURIComponent(token)}&jsonRpc=true&revision=19`);
      assert.equal(res.status, 400);
      assert.equal(await res.text(), '4010: Wrong Channel Id.');
    }
  });
});

describe('server version 5, calls over the rate', () => {
  let limited: TestApp;
  before(async () => {
    limited = await startTestApp(nats.url, { limits: { clientRequestsPerSec: 20, clientRequestBurst: 5 } });
  });
  after(() => limited?.stop());

  it('a connection without a public id (a shared channel only) is slowed down by its address: every call answered, in order, the socket open', async () => {
    const shared = newShared();
    const c = await openWs(`${limited.wsBase}/bitrix/subws/?CHANNEL_ID=${encodeURIComponent(shared.token)}&jsonRpc=true`);
    const N = 30;
    for (let n = 1; n <= N; n++) c.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'ping', params: {}, id: n }));
    const ids = (): number[] => c.frames.map((f) => String(f.data)).filter((d) => d !== 'ping').map((d) => (JSON.parse(d) as { id: number }).id);
    await eventually('the burst answered', () => ids().length >= 5, 5_000, 10);
    assert.ok(ids().length < N, `over the rate some calls wait (${ids().length} answered at once)`);
    await eventually('every call answered', () => ids().length === N, 10_000, 20);
    assert.deepEqual(ids(), Array.from({ length: N }, (_, i) => i + 1));
    const metrics = await (await fetch(`http://127.0.0.1:${limited.app.adminAddress!.port}/metrics`)).text();
    assert.match(metrics, /jetpull_client_requests_limited_total\{[^}]*action="delayed"[^}]*by="ip"[^}]*\} [1-9]/);
    assert.equal(c.ws.readyState, c.ws.OPEN);
    c.close();
  });
});

describe('server version 5, connections per user', () => {
  let small: TestApp;
  before(async () => {
    small = await startTestApp(nats.url, { limits: { maxConnPerChannel: 2 } });
  });
  after(() => small?.stop());

  it("a token's user counts like a channel with a public id: over limits.maxConnPerChannel the oldest is closed 4029", async () => {
    const nowSec = Math.floor(Date.now() / 1000);
    const token = pullToken({ iss: 'limit-host', iat: nowSec, exp: nowSec + 600, sub: '9' });
    const url = `${small.wsBase}/bitrix/subws/?token=${encodeURIComponent(token)}&jsonRpc=true`;
    const first = await openWs(url);
    const second = await openWs(url);
    const third = await openWs(url);
    const closed = await first.closed;
    assert.deepEqual(closed, { code: 4029, reason: '4029: Too many connections' });
    assert.equal(second.ws.readyState, second.ws.OPEN);
    assert.equal(third.ws.readyState, third.ws.OPEN);
    second.close();
    third.close();
  });
});

describe('server version 5, user status pushes', () => {
  const HOST = `status${Date.now()}`;
  const fast = { storage: { onlineTtlSec: 2, onlineDeltaSec: 1 }, gateway: { userStatusPollMs: 200, jsonRpcPingIntervalMs: 1_000 } } as const;
  let g1: TestApp;
  let g2: TestApp;
  before(async () => {
    g1 = await startTestApp(nats.url, { ...fast, processUniqueId: 'status-g1' });
    g2 = await startTestApp(nats.url, { ...fast, processUniqueId: 'status-g2' });
  });
  after(async () => {
    await g1?.stop();
    await g2?.stop();
  });

  const tokenFor = (uid: number): string => {
    const nowSec = Math.floor(Date.now() / 1000);
    return pullToken({ iss: HOST, iat: nowSec, exp: nowSec + 600, sub: String(uid) });
  };
  const statusFrames = (ws: { frames: Array<{ data: Buffer }> }): Array<{ params: { user_id: number; online: boolean }; extra: { server_time_unix: number } }> =>
    ws.frames
      .map((f) => String(f.data))
      .filter((d) => d !== 'ping')
      .flatMap((d) => {
        const v = JSON.parse(d) as unknown;
        return (Array.isArray(v) ? v : [v]) as Array<{ method?: string; params?: { body?: { command?: string } } }>;
      })
      .filter((r) => r.method === 'incoming.message' && r.params?.body?.command === 'userStatusChange')
      .map((r) => (r.params as unknown as { body: { params: { user_id: number; online: boolean }; extra: { server_time_unix: number } } }).body);

  it("the official client's subscribeUserStatusChange hears a user come online and go offline, once per change though two gateways watch for the same user", async (ctx) => {
    const watcher = 1000 + Math.floor(Math.random() * 1e6);
    const watched = watcher + 1;
    const token = tokenFor(watcher);
    const user = { ...newUser(), priv: token.split('.')[2]! };
    const shared = newShared();
    const config = buildPullConfig({ base: g1.base, wsBase: g1.wsBase, user, shared, version: 5 }) as unknown as Record<string, any>;
    delete config.channels.private;
    config.jwt = token;
    config.exp = Math.floor(Date.now() / 1000) + 600;
    const oc = await startOfficialClient({ base: g1.base, wsBase: g1.wsBase, user, shared, version: 5, userId: watcher, config: config as never });
    ctx.after(() => oc.stop());
    const heard: Array<{ userId: number; isOnline: boolean }> = [];
    await oc.client.subscribeUserStatusChange(watched, (e: { userId: number; isOnline: boolean }) => heard.push(e));
    // The same user's second tab, on the other gateway, watching the same user.
    const tab = await openWs(`${g2.wsBase}/bitrix/subws/?token=${encodeURIComponent(token)}&jsonRpc=true`);
    ctx.after(() => tab.close());
    tab.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'subscribeStatusChange', params: { userId: String(watched) }, id: 1 }));
    await eventually('the tab subscribed', () => tab.text().includes('"id":1'), 5_000, 20);
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual([...heard], [], "nothing before a change");

    const other = await openWs(`${g1.wsBase}/bitrix/subws/?token=${encodeURIComponent(tokenFor(watched))}&jsonRpc=true`);
    await eventually('online heard', () => heard.some((e) => e.isOnline), 5_000, 20);
    assert.deepEqual(heard, [{ userId: watched, isOnline: true }]);
    const online = statusFrames({ frames: oc.frames.map((f) => ({ data: Buffer.from(f.data as string) })) })[0]!;
    assert.ok(Math.abs(online.extra.server_time_unix - Date.now() / 1000) < 10, `server_time_unix recent: ${online.extra.server_time_unix}`);
    await eventually('the tab told too', () => statusFrames(tab).length === 1, 5_000, 20);

    other.terminate();
    await eventually('offline heard', () => heard.some((e) => !e.isOnline), 15_000, 50);
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(heard, [{ userId: watched, isOnline: true }, { userId: watched, isOnline: false }], 'each change once, though both gateways saw it');
    assert.deepEqual(statusFrames(tab).map((b) => b.params.online), [true, false]);
    assert.deepEqual(oc.handlerErrors, []);
  });
});
