import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Live-only messages (no expiry) are never replayed, so on a server with per-message
 * TTL (nats-server 2.11+) they leave the stream after storage.liveOnlyTtlSec instead
 * of holding space for the whole replay window; messages with a short expiry leave
 * when they expire. On older servers the stream keeps the 2.9 behaviour.
 */

let nats: TestNats;
let t: TestApp;
let nc: NatsConnection;
let jsm: JetStreamManager;
let perMessageTtl: boolean;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { storage: { liveOnlyTtlSec: 1 } });
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  const [major = 0, minor = 0] = (nc.info?.version ?? '0.0').split('.').map(Number);
  perMessageTtl = major > 2 || (major === 2 && minor >= 11);
});
after(async () => {
  await nc?.close();
  await t?.stop();
  await nats?.stop();
});

const stored = async (subject: string): Promise<number> => (await jsm.streams.info('PUSH_MESSAGES', { subjects_filter: subject })).state.subjects?.[subject] ?? 0;

describe('per-message TTL', () => {
  it('is used exactly when the server supports it', async () => {
    const info = await jsm.streams.info('PUSH_MESSAGES');
    assert.equal(info.config.allow_msg_ttl === true, perMessageTtl, `server ${nc.info?.version}`);
  });

  it('a live-only message leaves the stream after liveOnlyTtlSec where the server can; one with an expiry stays', async () => {
    const user = newUser();
    const subject = `push.msg.priv.${user.priv}`;
    assert.equal((await publishText(t.base, user.priv, '{"live":true}')).status, 200);
    assert.equal((await publishText(t.base, user.priv, '{"kept":true}', 3600)).status, 200);
    assert.equal(await stored(subject), 2);
    if (perMessageTtl) {
      await eventually('the live-only copy to expire', async () => (await stored(subject)) === 1, 10_000, 250);
    } else {
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(await stored(subject), 2, 'kept for the stream age limit on servers without per-message TTL');
    }
  });
});
