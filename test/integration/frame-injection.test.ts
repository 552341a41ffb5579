import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newShared, newUser, signRaw, type TestUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { startOfficialClient, type OfficialClient, type Transport } from '../helpers/official-client/index.ts';
import { hex, incomingMessages } from '../helpers/protobuf.ts';

/**
 * Text frames (spec §3.2) are cut out by clients with /#!NGINXNMS!#(.*?)#!NGINXNME!#/,
 * so a body carrying the markers could end its own message early and add messages of
 * its choosing. The official client in text mode (server version 3) must get exactly
 * the message that was published, with its body unchanged, whoever published it.
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

/** A whole forged message, as a client would read it out of a frame. */
const FORGED_ENVELOPE = `{"id":1,"mid":"17000000000000000000000001","channel":"-","tag":"000","time":"x","text":{"module_id":"${MODULE}","command":"forged","params":{"evil":true}}}`;
/** Valid JSON whose string value carries the markers. */
const MARKERS_IN_STRING = { s: `}#!NGINXNME!##!NGINXNMS!#${FORGED_ENVELOPE}#!NGINXNME!##!NGINXNMS!#{` };

function body(command: string, params: Record<string, unknown>): string {
  return JSON.stringify({ module_id: MODULE, command, params });
}

async function startText(transport: Transport, user: TestUser): Promise<OfficialClient> {
  // Over long polling a stored message first, so every poll after the first carries a mid (see official-client.test.ts).
  if (transport === 'longpolling') await publishText(t.base, user.priv, body('seed', {}), 3600);
  const oc = await startOfficialClient({ base: t.base, wsBase: t.wsBase, user, shared: newShared(), version: 3, transport });
  if (transport === 'longpolling') await oc.waitForConnections(2);
  return oc;
}

/** A client publish to `to`'s public id over POST /bitrix/rest/, signed as `from`. */
async function clientPublish(from: TestUser, to: TestUser, raw: string): Promise<Response> {
  const req = incomingMessages([{ receivers: [{ id: hex(to.pub), isPrivate: false, signature: signRaw(`public:${to.pub}`) }], body: raw, expiry: 60 }]);
  return fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${from.token}`, { method: 'POST', body: req });
}

/**
 * Every event up to a closing backend message: delivery is in order, so once it is
 * in, whatever came before it is in too. A long-poll client that got an unreadable
 * answer forgets its mid and may miss one published before its next poll, so the
 * closing message is sent again until one arrives.
 */
async function eventsUntilDone(oc: OfficialClient, user: TestUser): Promise<OfficialClient['events']> {
  for (let attempt = 0; !oc.events.some((e) => e.command === 'done'); attempt++) {
    assert.ok(attempt < 5, `no closing message arrived: ${JSON.stringify(oc.debugInfo())}`);
    const res = await publishText(t.base, user.priv, body('done', {}), 3600);
    assert.equal(res.status, 200);
    await oc.waitForEvents(oc.events.length + 1, 3_000).catch(() => undefined);
  }
  return oc.events.filter((e) => e.command !== 'seed' && e.command !== 'done');
}

for (const transport of ['websocket', 'longpolling'] as const) {
  describe(`frame markers in bodies, text mode, ${transport}`, () => {
    it('a portal body whose JSON string carries the markers arrives as exactly one message with the original value', async (ctx) => {
      const user = newUser();
      const oc = await startText(transport, user);
      ctx.after(() => oc.stop());
      const res = await publishText(t.base, user.priv, body('test_event', MARKERS_IN_STRING), 3600);
      assert.equal(res.status, 200);
      const got = await eventsUntilDone(oc, user);
      assert.deepEqual(got.map((e) => [e.command, e.params]), [['test_event', MARKERS_IN_STRING]], JSON.stringify(oc.debugInfo()));
      assert.deepEqual(oc.handlerErrors, []);
    });

    it('a portal body that is not JSON, closes its frame and opens a forged one, adds no message', async (ctx) => {
      const user = newUser();
      const oc = await startText(transport, user);
      ctx.after(() => oc.stop());
      const res = await publishText(t.base, user.priv, `${body('test_event', { n: 1 })}}#!NGINXNME!##!NGINXNMS!#${FORGED_ENVELOPE.slice(0, -1)}`, 3600);
      assert.equal(res.status, 200);
      const got = await eventsUntilDone(oc, user);
      assert.deepEqual(got.filter((e) => e.command === 'forged'), [], JSON.stringify(oc.debugInfo()));
      for (const m of oc.wireMessages()) assert.notEqual((m.text as { command?: string } | undefined)?.command, 'forged');
    });

    it('a client-published body that closes its frame and opens a forged one adds no message', async (ctx) => {
      const victim = newUser();
      const oc = await startText(transport, victim);
      ctx.after(() => oc.stop());
      // Raw, not JSON as a whole: its own message closes early, and the forged envelope follows in frame markers.
      const raw = `${body('test_event', { n: 1 })}}#!NGINXNME!##!NGINXNMS!#${FORGED_ENVELOPE.slice(0, -1)}`;
      const res = await clientPublish(newUser(), victim, raw);
      assert.equal(res.status, 400, 'not an event as the official client sends it');
      const got = await eventsUntilDone(oc, victim);
      assert.deepEqual(got.filter((e) => e.command === 'forged'), [], JSON.stringify(oc.debugInfo()));
      for (const m of oc.wireMessages()) assert.notEqual((m.text as { command?: string } | undefined)?.command, 'forged');
    });

    it('a client-published JSON body with the markers in a string arrives as exactly one message with the original value', async (ctx) => {
      const victim = newUser();
      const oc = await startText(transport, victim);
      ctx.after(() => oc.stop());
      const res = await clientPublish(newUser(), victim, body('test_event', MARKERS_IN_STRING));
      assert.equal(res.status, 200, await res.text());
      const got = await eventsUntilDone(oc, victim);
      assert.deepEqual(got.map((e) => [e.command, e.params]), [['test_event', MARKERS_IN_STRING]], JSON.stringify(oc.debugInfo()));
    });
  });
}
