import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newShared, newUser, sign, type TestUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { startOfficialClient, type OfficialClient, type OfficialClientOptions, type Transport } from '../helpers/official-client/index.ts';

/**
 * The official Bitrix pull client (`@bitrix24/b24jssdk@2.2.0`, B24PullClientManager)
 * run headless against jetpull with server version 3 (text mode), over WebSocket and
 * over long polling: delivery to the subscriber callback, and recovery of the
 * messages published while its connection was down (exactly once each).
 */

const HOLD_MS = 2_000;

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

/** A body as the PHP module publishes it (spec §3.3). */
function eventBody(command: string, params: Record<string, unknown>, moduleId = 'application'): string {
  return JSON.stringify({
    module_id: moduleId,
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

/**
 * Starts the client for a fresh user. Over long polling the first poll carries no
 * `mid` (the client has none yet), and a poll without `mid` only gets live messages:
 * a publish that reaches the server between two such polls would be missed by design.
 * So a message is stored first: the first poll's 304 then hands the client its
 * `Last-Message-Id`, every later poll carries a `mid`, and nothing can fall between
 * polls.
 */
async function startFor(
  transport: Transport,
  user: TestUser,
  shared: { id: string; token: string },
  extra: Partial<OfficialClientOptions> = {},
): Promise<OfficialClient> {
  if (transport === 'longpolling') await publish(user.priv, 'seed', {});
  const oc = await startOfficialClient({ base: t.base, wsBase: t.wsBase, user, shared, version: 3, transport, ...extra });
  if (transport === 'longpolling') {
    try {
      await checkFirstPolls(oc);
    } catch (err) {
      await oc.stop();
      throw err;
    }
  }
  return oc;
}

async function checkFirstPolls(oc: OfficialClient): Promise<void> {
  // start() resolved on the first answer: the 304 with the seed's id. The page is
  // on another origin, so the client can only read Last-Message-Id (and resume from
  // it on the next poll) if the server exposes it to CORS.
  const first = oc.pollAnswers[0];
  assert.ok(first, 'the first poll was answered');
  assert.equal(first.status, 304);
  assert.equal(first.headers.expires, 'Thu, 01 Jan 1973 11:11:01 GMT');
  assert.match(String(first.headers['last-message-id']), /^\d{26}$/);
  await oc.waitForConnections(2);
  assert.ok(oc.connections[1]!.url.includes(`&mid=${String(first.headers['last-message-id'])}&`), `second poll resumes: ${oc.connections[1]!.url}`);
}

function testEvents(oc: OfficialClient): OfficialClient['events'] {
  return oc.events.filter((e) => e.command === 'test_event');
}

for (const transport of ['websocket', 'longpolling'] as const) {
  describe(`official client, server version 3, ${transport}`, () => {
    it('connects with the expected URL and receives a backend publish', async (ctx) => {
      const user = newUser();
      const shared = newShared();
      const oc = await startFor(transport, user, shared);
      ctx.after(() => oc.stop());

      const channelParam = encodeURIComponent(`${user.token}/${shared.token}`);
      const first = oc.connections[0]!;
      assert.equal(first.transport, transport);
      const base = transport === 'websocket' ? t.wsBase : t.base;
      assert.equal(first.url, `${base}/bitrix/subws/?CHANNEL_ID=${channelParam}&revision=19`);
      assert.equal(oc.client.getDebugInfo()['WebSocket mode'], transport === 'websocket' ? 'text' : '-');
      assert.ok(oc.isConnected());

      const sent = Math.floor(Date.now() / 1000);
      await publish(user.priv, 'test_event', { n: 1 });
      await oc.waitForEvents(1);
      const got = testEvents(oc);
      assert.equal(got.length, 1, JSON.stringify(oc.debugInfo()));
      const ev = got[0]!;
      assert.equal(ev.command, 'test_event');
      assert.deepEqual(ev.params, { n: 1 });
      assert.deepEqual(ev.info, { type: 'server', moduleId: 'application' });
      assert.equal(ev.extra.revision_web, 19);
      assert.ok(Number(ev.extra.server_time_unix) >= sent);
      assert.equal(typeof ev.extra.server_time_ago, 'number');
      assert.deepEqual(oc.handlerErrors, []);

      // On the wire: one text frame with a 26-digit mid and the body verbatim.
      const wire = oc.wireMessages();
      assert.equal(wire.length, 1);
      assert.match(wire[0]!.mid, /^\d{26}$/);
      assert.deepEqual(wire[0]!.text, {
        module_id: 'application',
        command: 'test_event',
        params: { n: 1 },
        extra: { server_time_unix: ev.extra.server_time_unix, revision_web: 19 },
      });
    });

    it('dispatches an upper-case module id to the lower-case subscriber (body passed through unchanged)', async (ctx) => {
      const user = newUser();
      const shared = newShared();
      const oc = await startFor(transport, user, shared, { command: 'test_event' });
      ctx.after(() => oc.stop());
      const res = await publishText(t.base, shared.id, eventBody('test_event', { n: 'shared' }, 'Application'), 3600);
      assert.equal(res.status, 200);
      const [ev] = await oc.waitForEvents(1);
      assert.deepEqual(ev!.params, { n: 'shared' });
      assert.deepEqual(ev!.info, { type: 'server', moduleId: 'application' });
      const wire = oc.wireMessages();
      assert.equal((wire[0]!.text as { module_id: string }).module_id, 'Application', 'the server keeps the body verbatim');
    });

    it('after a dropped connection, gets every message published meanwhile exactly once, then live ones', async (ctx) => {
      const user = newUser();
      const shared = newShared();
      const oc = await startFor(transport, user, shared);
      ctx.after(() => oc.stop());

      // A first message gives the client its resume point (mid).
      await publish(user.priv, 'test_event', { n: 0 });
      await oc.waitForEvents(1);
      const resumeMid = oc.wireMessages().at(-1)!.mid;

      const connectionsBefore = oc.connections.length;
      await oc.disconnect({ holdReconnect: true });
      assert.equal(oc.isConnected(), false);

      // Published while the client is offline (its reconnection is held back).
      await publish(user.priv, 'test_event', { n: 1 });
      await publish(user.priv, 'test_event', { n: 2 });
      await publish(shared.id, 'test_event', { n: 3 });
      assert.equal(testEvents(oc).length, 1, 'nothing arrives while disconnected');

      oc.releaseReconnect();
      await oc.waitForEvents(4, 5_000);
      const reconnect = oc.connections[connectionsBefore];
      assert.ok(reconnect, 'the client reconnected by itself');
      assert.equal(reconnect.transport, transport);
      assert.ok(reconnect.url.includes(`&mid=${resumeMid}&`), `the reconnection resumes from ${resumeMid}: ${reconnect.url}`);

      // A live message after the reconnection; it comes after any duplicate of the replay would.
      await publish(user.priv, 'test_event', { n: 4 });
      await oc.waitForEvents(5, 5_000);

      const ns = testEvents(oc).map((e) => e.params.n);
      assert.deepEqual(ns, [0, 1, 2, 3, 4], `each message once, in order: ${JSON.stringify(oc.debugInfo())}`);
      // The client drops repeated mids itself, so check the wire too: the server sent each message once.
      const mids = oc.wireMessages().map((m) => m.mid);
      assert.equal(mids.length, 5, `messages on the wire: ${JSON.stringify(oc.wireMessages())}`);
      assert.equal(new Set(mids).size, 5, `no message sent twice: ${mids.join(', ')}`);
      assert.deepEqual([...mids].sort(), mids, 'mids increase');
      assert.deepEqual(oc.handlerErrors, []);
      assert.ok(oc.isConnected());
    });
  });
}

describe('official client, server version 3, the v3-era private id', () => {
  it('connects with `priv.sig` (no public id, as the portal hands out for version ≤ 3) and receives', async (ctx) => {
    const user = newUser();
    const shared = newShared();
    const oc = await startFor('websocket', user, shared, { privateChannelId: `${user.priv}.${sign(user.priv)}` });
    ctx.after(() => oc.stop());
    await publish(user.priv, 'test_event', { n: 7 });
    const [ev] = await oc.waitForEvents(1);
    assert.deepEqual(ev!.params, { n: 7 });
  });
});
