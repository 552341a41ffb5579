import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser } from '../helpers/channels.ts';
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
    // Which of the racing polls and upgrades win the four tokens left is up to the scheduler.
    const taken = statuses.filter((s) => s === 304).length + upgrades.filter((u) => u.startsWith('HTTP/1.1 101 ')).length;
    assert.ok(taken >= 1, `some connections were taken: polls ${statuses.join(',')}`);
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

describe('long-poll re-polls and the connection rate', () => {
  const RATE = 4;
  const HELD = 3 * RATE;
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { maxNewConnectionsPerSec: RATE, longPollTimeoutMs: 30_000, repollGraceMs: 10_000 } });
  });
  after(() => t.stop());

  it('one broadcast answering more held polls than maxNewConnectionsPerSec: every client polls again with its mid and is held, not refused', async () => {
    const shared = newShared();
    const users = Array.from({ length: HELD }, () => newUser());
    const url = (u: (typeof users)[number], mid?: string): string =>
      `${t.base}/bitrix/sub/?CHANNEL_ID=${u.token}/${shared.token}${mid === undefined ? '' : `&mid=${mid}`}`;
    // Opened RATE a second, as fast as admission lets new clients in.
    const held: Array<Promise<Awaited<ReturnType<typeof longPoll>['result']>>> = [];
    for (let i = 0; i < HELD; i += RATE) {
      if (i > 0) await new Promise((r) => setTimeout(r, 1_100));
      held.push(...users.slice(i, i + RATE).map((u) => longPoll(url(u)).result));
    }
    await eventually('every poll held', () => (t.app.gateway!.stats().pollings === HELD ? true : undefined));
    await publishText(t.base, shared.id, '{"module_id":"t","command":"broadcast","params":{}}', 60);
    const answers = await Promise.all(held);
    assert.deepEqual(answers.map((a) => a.status), users.map(() => 200));
    const mids = answers.map((a) => parseTextFrames(a.body.toString('utf8')).at(-1)!.mid);

    // Every client polls again at once with the mid it got, as the official client does.
    const again = users.map((u, i) => longPoll(url(u, mids[i])));
    await eventually('every re-poll held', () => (t.app.gateway!.stats().pollings === HELD ? true : undefined), 5_000);
    await publishText(t.base, shared.id, '{"module_id":"t","command":"second","params":{}}', 60);
    const second = await Promise.all(again.map((p) => p.result));
    assert.deepEqual(second.map((a) => a.status), users.map(() => 200));
    assert.equal(t.logs.find('connection refused').length, 0);
  });
});

describe('long-poll re-polls are free once per answer', () => {
  let t: TestApp;
  before(async () => {
    // One token a second: a poll that is charged right after another is refused.
    t = await startTestApp(nats.url, { gateway: { maxNewConnectionsPerSec: 1, longPollTimeoutMs: 30_000, repollGraceMs: 10_000 } });
  });
  after(() => t.stop());

  it('the answer\'s mid on the same channels is free once; the same poll again, or another client with that mid, is charged', async () => {
    const user = newUser();
    const poll = (token: string, mid?: string): ReturnType<typeof longPoll> =>
      longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}${mid === undefined ? '' : `&mid=${mid}`}`);
    const first = poll(user.token);
    await eventually('the poll held', () => (t.app.gateway!.stats().pollings === 1 ? true : undefined));
    await publishText(t.base, user.priv, '{"module_id":"t","command":"c","params":{}}', 60);
    const answer = await first.result;
    assert.equal(answer.status, 200);
    const mid = parseTextFrames(answer.body.toString('utf8')).at(-1)!.mid;

    const free = poll(user.token, mid);
    await eventually('the free re-poll held', () => (t.app.gateway!.stats().pollings === 1 ? true : undefined));
    // Whatever the bucket held is spent now; the next charged poll within a second is refused.
    const spender = poll(newUser().token);
    const spent = await Promise.race([spender.result.then((r) => r.status), new Promise((r) => setTimeout(() => r('held'), 200))]);
    assert.ok(spent === 'held' || spent === 503, String(spent));
    const repeated = await poll(user.token, mid).result;
    assert.equal(repeated.status, 503, 'a second poll on one answer is charged');
    const other = await poll(newUser().token, mid).result;
    assert.equal(other.status, 503, 'another client bringing that mid is charged');
    free.abort();
    spender.abort();
  });
});
