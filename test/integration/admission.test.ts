import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Admission control: a gateway takes new connections at a bounded rate and queues a
 * bounded number of replays; beyond either it answers 503 (long poll) or refuses
 * the upgrade with 503, and the connections it holds keep getting live messages.
 */

let nats: TestNats;
let nc: NatsConnection;
before(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

function upgrade(query: string): string {
  return (
    `GET /bitrix/subws/?${query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  );
}

describe('admission control', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { maxNewConnectionsPerSec: 5, longPollTimeoutMs: 1_000 } });
  });
  after(() => t.stop());

  it('refuses connections beyond maxNewConnectionsPerSec with 503; the ones it took keep working', async () => {
    const user = newUser();
    const held = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const polls = Array.from({ length: 10 }, () => longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${newUser().token}`).result);
    const upgrades = await Promise.all(Array.from({ length: 5 }, () => rawRequest(t.port, upgrade(`CHANNEL_ID=${newUser().token}`), 500)));
    const statuses = (await Promise.all(polls)).map((r) => r.status);
    const refusedPolls = statuses.filter((s) => s === 503).length;
    const refusedUpgrades = upgrades.filter((u) => u.startsWith('HTTP/1.1 503 ')).length;
    assert.ok(refusedPolls + refusedUpgrades >= 5, `polls ${statuses.join(',')}; upgrades ${upgrades.map((u) => u.slice(0, 12)).join(',')}`);
    assert.ok(statuses.some((s) => s === 304), 'some polls were taken');
    await publishText(t.base, user.priv, '{"module_id":"t","command":"c","params":{}}', 60);
    await held.waitFrames(1);
    held.close();
    const metrics = t.logs.find('connection refused');
    assert.ok(metrics.some((l) => l.reason === 'connection-rate'));
  });
});

describe('replay queue bound', () => {
  let t: TestApp;
  before(async () => {
    // One replay at a time and a queue of two: the rest of a burst is refused.
    t = await startTestApp(nats.url, { gateway: { maxConcurrentReplays: 1, maxQueuedReplays: 2 } });
  });
  after(() => t.stop());

  it('refuses connections whose replay would queue past maxQueuedReplays; accepted ones get their replay', async () => {
    const [start] = (await nc.request('push.publish', JSON.stringify({ channels: [newId()], body: '{}', expiry: 60 }), { timeout: 5_000 })).json<{ mids: string[] }>().mids;
    const users = Array.from({ length: 12 }, () => newUser());
    for (const u of users) {
      await nc.request('push.publish', JSON.stringify({ channels: [u.priv], body: `{"module_id":"t","command":"c","params":{"u":"${u.pub}"}}`, expiry: 60 }), { timeout: 5_000 });
    }
    const clients = users.map((u) => new TestWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}&mid=${start}`));
    const outcomes = await Promise.all(clients.map((c) => c.opened.then(() => 'open', () => 'refused')));
    assert.ok(outcomes.includes('refused'), outcomes.join(','));
    for (const [i, c] of clients.entries()) {
      if (outcomes[i] !== 'open') continue;
      await eventually('the replay', () => parseTextFrames(c.text()).length === 1);
      assert.equal((parseTextFrames(c.text())[0]!.text as { params: { u: string } }).params.u, users[i]!.pub);
      c.close();
    }
    assert.ok(t.logs.find('connection refused').some((l) => l.reason === 'replay-queue'));
  });
});
