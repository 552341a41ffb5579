import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Acknowledged means stored: what was answered 200 survives restarts of jetpull and
 * of nats-server, publishes fail with 503 (never a false 200) while NATS is away,
 * recover by themselves, and a retried request is stored once.
 */

let nats: TestNats;
let probe: NatsConnection;

const body = (n: number | string): string => `{"module_id":"t","command":"m","params":{"n":${JSON.stringify(n)}}}`;

/**
 * A mid older than anything published after this call, from a throwaway publish. The
 * probe connection may still be reconnecting after a server restart (a request sent
 * meanwhile is lost), so it asks again until answered.
 */
async function markMid(): Promise<string> {
  return eventually('a mid from the NATS publish API', async () => {
    const reply = await probe.request('push.publish', JSON.stringify({ channels: [newId()], body: '{}', expiry: 60 }), { timeout: 1_000 });
    return reply.json<{ mids?: string[] }>().mids?.[0];
  }, 15_000, 100);
}

async function replayAll(t: TestApp, token: string, mid: string): Promise<unknown[]> {
  const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}&mid=${mid}`).result;
  assert.equal(res.status, 200, `replay answered ${res.status}`);
  return parseTextFrames(res.body.toString()).map((f) => (f.text as { params: { n: unknown } }).params.n);
}

before(async () => {
  nats = await startTestNats();
  probe = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
});

after(async () => {
  await probe?.close();
  await nats?.stop();
});

describe('durability', () => {
  it('messages acknowledged before a restart of jetpull are replayed after it, with the same mids', async () => {
    const user = newUser();
    const first = await startTestApp(nats.url);
    const mid = await markMid();
    for (let i = 1; i <= 3; i++) assert.equal((await publishText(first.base, user.priv, body(i), 3600)).status, 200);
    const before = (await longPoll(`${first.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result).body.toString();
    await first.stop();

    const second = await startTestApp(nats.url);
    try {
      const res = await longPoll(`${second.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result;
      assert.deepEqual(parseTextFrames(res.body.toString()).map((f) => f.mid), parseTextFrames(before).map((f) => f.mid));
      assert.deepEqual(await replayAll(second, user.token, mid), [1, 2, 3]);
    } finally {
      await second.stop();
    }
  });

  it('messages acknowledged before nats-server is killed (-9) are replayed after it comes back; jetpull reconnects by itself', async () => {
    const t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 2_000 } });
    try {
      const user = newUser();
      const mid = await markMid();
      for (let i = 1; i <= 5; i++) assert.equal((await publishText(t.base, user.priv, body(i), 3600)).status, 200);
      await nats.kill();

      // While NATS is away a publish is refused, never falsely acknowledged.
      const during = await publishText(t.base, user.priv, body('during'), 3600);
      assert.equal(during.status, 503);
      assert.equal(during.headers.get('retry-after'), '1');
      assert.match(await during.text(), /retry later/);

      await nats.start();
      await eventually('publishes to succeed again', async () => (await publishText(t.base, user.priv, body(6), 3600)).status === 200, 15_000, 200);
      assert.deepEqual(await replayAll(t, user.token, mid), [1, 2, 3, 4, 5, 6]);

      // Live delivery works again through the same gateway.
      const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
      await publishText(t.base, user.priv, body('live'), 60);
      await eventually('the live message', () => parseTextFrames(ws.text()).length === 1);
      ws.close();
    } finally {
      await t.stop();
    }
  });

  it('a request retried with the same Idempotency-Key after a timed-out write is stored once', async () => {
    const t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 1_000 } });
    try {
      const user = newUser();
      const mid = await markMid();
      const key = newId();
      await nats.pause();
      let first: Response;
      try {
        first = await publishText(t.base, user.priv, body('once'), 3600, { 'Idempotency-Key': key });
      } finally {
        await nats.resume();
      }
      assert.equal(first.status, 503, 'the write could not be confirmed in time');
      const retry = await publishText(t.base, user.priv, body('once'), 3600, { 'Idempotency-Key': key });
      assert.equal(retry.status, 200);
      const again = await publishText(t.base, user.priv, body('once'), 3600, { 'Idempotency-Key': key });
      assert.equal(again.status, 200);
      assert.deepEqual(await replayAll(t, user.token, mid), ['once']);
    } finally {
      await t.stop();
    }
  });

  it('the publisher answers 503 at once when its mailbox is full instead of queueing without limit', async () => {
    const t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 3_000, mailboxCapacity: 4, maxInFlight: 2 } });
    try {
      const user = newUser();
      await nats.pause();
      let statuses: number[];
      try {
        const started = Date.now();
        const requests = Array.from({ length: 12 }, (_, i) => publishText(t.base, user.priv, body(i), 60));
        // The overflow is refused immediately, long before the publish timeout.
        const firstRefusal = await Promise.race(
          requests.map(async (r) => ((await r).status === 503 ? Date.now() - started : Number.POSITIVE_INFINITY)),
        );
        assert.ok(firstRefusal < 2_000, `first 503 after ${firstRefusal} ms`);
        statuses = (await Promise.all(requests)).map((r) => r.status);
      } finally {
        await nats.resume();
      }
      assert.ok(statuses.filter((s) => s === 503).length >= 6, statuses.join(','));
      assert.ok(t.logs.lines.length > 0);
      assert.equal((await publishText(t.base, user.priv, body('after'), 60)).status, 200);
    } finally {
      await t.stop();
    }
  });
});
