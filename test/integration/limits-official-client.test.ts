import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { closeSession, openSession } from '../helpers/official-client/session.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * How the official pull client takes a refusal by a limit: the handshake is answered
 * 429 instead of 101, so the client backs off (15 s and more) instead of coming back
 * every 0.5 s as it does when an open socket is closed, and connects by itself once
 * there is room.
 */

let nats: TestNats;
let t: TestApp;
before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { maxConnectionsPerIp: 1 } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

describe('official client and the limits per address', () => {
  it('refused at the handshake it tries again at most once in 5 s, and connects by itself once its address has room', async () => {
    // 127.0.0.1, the client's address, already holds its one connection.
    const filler = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`);
    const user = newUser();
    const session = openSession({ base: t.base, wsBase: t.wsBase, user, version: 3 });
    try {
      void session.client.start().catch(() => undefined);
      await eventually('the first attempt', () => session.tap.connections.length >= 1);
      await new Promise((r) => setTimeout(r, 5_000));
      const attempts = session.tap.connections.length;
      assert.ok(attempts <= 2, `${attempts} attempts in 5 s`);
      assert.ok(t.logs.find('connection refused').filter((l) => l.reason === 'connections-per-ip').length === attempts);
      assert.equal(session.client.isConnected(), false);

      filler.close();
      await eventually('the client back by itself', () => session.client.isConnected(), 25_000, 100);
      assert.ok(session.tap.connections.length <= attempts + 2, `${session.tap.connections.length} attempts in all`);
      await publishText(t.base, user.priv, JSON.stringify({ module_id: 'application', command: 'test_event', params: { n: 1 }, extra: { revision_web: 19 } }), 60);
      await eventually('the event', () => session.inbox.events.some((e) => e.command === 'test_event'));
    } finally {
      await closeSession(session);
    }
  });
});
