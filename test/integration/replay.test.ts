import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * Replay after sleep: a reconnect with `mid` gets every retained message newer than
 * it on all its channels, in mid order, before anything live, with no duplicate and
 * no gap between replay and live.
 */

let nats: TestNats;
let t: TestApp;
/** Same server, replaying 5 messages per page. */
let paged: TestApp;
let nc: NatsConnection;

type Frame = ReturnType<typeof parseTextFrames>[number];
const n = (f: Frame): unknown => (f.text as { params: { n: unknown } }).params.n;
const body = (i: number | string): string => `{"module_id":"t","command":"m","params":{"n":${JSON.stringify(i)}}}`;

async function publishNats(channels: Array<string | { id: string; isPrivate: boolean }>, text: string, expiry = 3600): Promise<string[]> {
  const reply = (await nc.request('push.publish', JSON.stringify({ channels, body: text, expiry }), { timeout: 5_000 })).json<{ mids: string[] }>();
  assert.ok(reply.mids, JSON.stringify(reply));
  return reply.mids;
}

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: 1_000 } });
  paged = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: 1_000, replayPageMessages: 5 } });
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await paged?.stop();
  await t?.stop();
  await nats?.stop();
});

describe('replay', () => {
  it('no gap and no duplicate between replay and live while messages keep flowing', async () => {
    const user = newUser();
    const [start] = await publishNats([user.priv], body('start'));
    const total = 60;
    let published = 0;
    const publishing = (async () => {
      for (; published < total; published++) await publishText(t.base, user.priv, body(published), 3600);
    })();
    // Reconnect in the middle of the flow.
    await eventually('some messages published', () => published >= 3);
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${start}`);
    await publishing;
    await eventually('every message', () => parseTextFrames(ws.text()).length >= total, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const frames = parseTextFrames(ws.text());
    assert.deepEqual(frames.map(n), Array.from({ length: total }, (_, i) => i));
    const mids = frames.map((f) => f.mid);
    assert.deepEqual([...mids].sort(), mids, 'in mid order');
    ws.close();
  });

  it('a mid from another epoch (a recreated stream) replays everything retained', async () => {
    const user = newUser();
    await publishNats([user.priv], body(1));
    await publishNats([user.priv], body(2));
    const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=10000000000000000000000001`).result;
    assert.equal(res.status, 200);
    assert.deepEqual(parseTextFrames(res.body.toString()).map(n), [1, 2]);
  });

  it('public ids and shared channels are replayed too, merged in mid order', async () => {
    const user = newUser();
    const shared = newShared();
    const [start] = await publishNats([newId()], '{}');
    await publishNats([{ id: user.pub, isPrivate: false }], body('pub'));
    await publishNats([shared.id], body('shared'));
    await publishNats([user.priv], body('priv'));
    const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}/${shared.token}&mid=${start}`).result;
    assert.deepEqual(parseTextFrames(res.body.toString()).map(n), ['pub', 'shared', 'priv']);
  });

  it('expired and live-only messages are not replayed', async () => {
    const user = newUser();
    const [start] = await publishNats([newId()], '{}');
    await publishNats([user.priv], body('short'), 1);
    await publishNats([user.priv], body('live'), 0);
    await publishNats([user.priv], body('kept'), 3600);
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${start}`).result;
    assert.deepEqual(parseTextFrames(res.body.toString()).map(n), ['kept']);
  });

  it('a long poll replays one page at a time; following the mids loses nothing', async () => {
    const user = newUser();
    const [start] = await publishNats([newId()], '{}');
    for (let i = 0; i < 12; i++) await publishNats([user.priv], body(i));
    const got: unknown[] = [];
    let mid = start!;
    for (let page = 0; page < 3; page++) {
      const res = await longPoll(`${paged.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result;
      assert.equal(res.status, 200);
      const frames = parseTextFrames(res.body.toString());
      assert.ok(frames.length <= 5);
      got.push(...frames.map(n));
      mid = frames.at(-1)!.mid;
    }
    assert.deepEqual(got, Array.from({ length: 12 }, (_, i) => i));
  });

  it('a WebSocket with more than a page gets that page alone, is closed with 1013 and resumes from its new mid', async () => {
    const user = newUser();
    const [start] = await publishNats([newId()], '{}');
    for (let i = 0; i < 8; i++) await publishNats([user.priv], body(i));
    const first = await openWs(`${paged.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${start}`);
    const closed = await within('the close', first.closed, 5_000);
    assert.equal(closed.code, 1013);
    const page = parseTextFrames(first.text());
    assert.deepEqual(page.map(n), [0, 1, 2, 3, 4]);
    const second = await openWs(`${paged.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${page.at(-1)!.mid}`);
    await eventually('the rest', () => parseTextFrames(second.text()).length === 3);
    assert.deepEqual(parseTextFrames(second.text()).map(n), [5, 6, 7]);
    second.close();
  });

  it('a publish to several of a connection\'s channels is replayed once, also when the mid falls between its copies', async () => {
    const user = newUser();
    const shared = newShared();
    const [start] = await publishNats([newId()], '{}');
    const mids = await publishNats([user.priv, shared.id], body('both'));
    await publishNats([shared.id], body('after'));
    const token = `${user.token}/${shared.token}`;
    const all = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}&mid=${start}`).result;
    assert.deepEqual(parseTextFrames(all.body.toString()).map(n), ['both', 'after']);
    assert.equal(parseTextFrames(all.body.toString())[0]!.mid, mids[0]);
    // The client saw the first copy (on P) and slept: the copy on S must not come back.
    const rest = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}&mid=${mids[0]}`).result;
    assert.deepEqual(parseTextFrames(rest.body.toString()).map(n), ['after']);
    // A client holding only S gets the S copy.
    const onlyS = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${shared.token}&mid=${start}`).result;
    assert.deepEqual(parseTextFrames(onlyS.body.toString()).map(n), ['both', 'after']);
  });

  it('a copy whose first copy went to someone else before the client\'s mid is replayed to a client with a public id', async () => {
    // The client's channels include its public id, which nobody publishes to. Copies are
    // written one at a time, so another publish can be stored between the first copy and
    // this client's one and give the client a mid between them; here the mid is the first
    // copy's own. The replay then looks for an earlier sibling on each of the client's other
    // channels, the public one included, where a batched walk (nats-server 2.11+) finds nothing.
    const user = newUser();
    const mids = await publishNats([newId(), user.priv], body('to both'));
    const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mids[0]}`).result;
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(parseTextFrames(res.body.toString()).map(n), ['to both']);
    assert.equal(parseTextFrames(res.body.toString())[0]!.mid, mids[1]);
  });

  it('a reconnect storm is served by one shared scan of the stream: each client gets its own messages, once, in order', async () => {
    const storm = await startTestApp(nats.url, { gateway: { maxConcurrentReplays: 1 } });
    try {
      const users = Array.from({ length: 60 }, () => newUser());
      const [start] = await publishNats([newId()], '{}');
      for (let round = 0; round < 3; round++) {
        for (const [i, u] of users.entries()) await publishNats([u.priv], body(`${i}:${round}`));
      }
      // One message to two of a client's channels (its own and a shared one) counts once.
      const shared = newShared();
      await publishNats([users[0]!.priv, shared.id], body('both'));
      const clients = users.map((u, i) => new TestWs(`${storm.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}${i === 0 ? `/${shared.token}` : ''}&mid=${start}`));
      for (const [i, c] of clients.entries()) {
        await eventually(`client ${i}'s messages`, () => parseTextFrames(c.text()).length >= 3, 10_000);
        const expected = [0, 1, 2].map((r) => `${i}:${r}`);
        if (i === 0) expected.push('both');
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(parseTextFrames(c.text()).map(n), expected);
        c.close();
      }
      assert.ok(storm.logs.find('shared replay scan done').length >= 1, 'a shared scan served the queued replays');
    } finally {
      await storm.stop();
    }
  });

  it('a long poll coming back with the mid of the message it just got reads nothing from the stream', async () => {
    const user = newUser();
    const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}`);
    await new Promise((r) => setTimeout(r, 100));
    await publishNats([user.priv], body('first'));
    const first = parseTextFrames((await poll.result).body.toString());
    const readsBefore = t.app.gateway!.stats().replayReads;
    const again = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${first[0]!.mid}`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(t.app.gateway!.stats().replayReads, readsBefore, 'no direct get for a channel the gateway held all along');
    await publishNats([user.priv], body('second'));
    assert.deepEqual(parseTextFrames((await again.result).body.toString()).map(n), ['second']);
    // An older mid on a channel the gateway held all along: replayed from the messages it
    // kept (one server: no read; in a cluster one read of the channel's newest message).
    const fromMemory = t.app.gateway!.stats().replaysFromMemory;
    const old = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${first[0]!.mid}`).result;
    assert.deepEqual(parseTextFrames(old.body.toString()).map(n), ['second']);
    assert.equal(t.app.gateway!.stats().replaysFromMemory, fromMemory + 1);
    assert.equal(t.app.gateway!.stats().replayReads, readsBefore);
  });

  it('a mid from before the gateway held the channel is read from the stream', async () => {
    const user = newUser();
    const [start] = await publishNats([user.priv], body('before'));
    await publishNats([user.priv], body('missed'));
    const readsBefore = t.app.gateway!.stats().replayReads;
    const fromMemory = t.app.gateway!.stats().replaysFromMemory;
    const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${start}`).result;
    assert.deepEqual(parseTextFrames(res.body.toString()).map(n), ['missed']);
    assert.ok(t.app.gateway!.stats().replayReads > readsBefore, 'read from the stream');
    assert.equal(t.app.gateway!.stats().replaysFromMemory, fromMemory);
  });

  it('replays of many clients at once are bounded by maxConcurrentReplays and all complete', async () => {
    const users = Array.from({ length: 40 }, () => newUser());
    const [start] = await publishNats([newId()], '{}');
    for (const u of users) await publishNats([u.priv], body(u.pub));
    const clients = users.map((u) => new TestWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}&mid=${start}`));
    for (const [i, c] of clients.entries()) {
      await c.waitFrames(1);
      assert.deepEqual(parseTextFrames(c.text()).map(n), [users[i]!.pub]);
      c.close();
    }
  });
});
