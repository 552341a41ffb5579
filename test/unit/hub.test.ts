import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Hub } from '../../src/gateway/hub.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';
import { newId } from '../helpers/channels.ts';
import { SessionHarness } from '../helpers/session-harness.ts';
import { StreamFixture } from '../helpers/stream-fixture.ts';
import { eventually } from '../helpers/wait.ts';

/** The hub on a real nats-server and real sockets; the live feed can be made to lose messages. */
describe('hub', () => {
  let f: StreamFixture;
  let h: SessionHarness;
  before(async () => {
    f = await StreamFixture.start();
    h = await SessionHarness.start();
  });
  after(async () => {
    await h.close();
    await f.stop();
  });

  const newHub = (drop?: (m: StoredMessage) => boolean, lingerMs = 10_000): Hub => new Hub(f.feed(drop), f.reader, () => f.epochSec, f.log, { lingerMs, maxHeldMessages: 100_000, recentBytes: 0, recentPerChannel: 0 });

  const liveSession = async (keys: string[]) => {
    const pair = await h.ws({ keys });
    pair.session.finishSync([]);
    return pair;
  };

  it('hands every message of a channel to each of its sessions, in order, with the stream sequence as id', async () => {
    const hub = newHub();
    const key = `priv.${newId()}`;
    const a = await liveSession([key]);
    const b = await liveSession([key]);
    await hub.attach(a.session);
    await hub.attach(b.session);
    const seqs = [await f.store(key), await f.store(key), await f.store(key)];
    assert.deepEqual(await a.client.waitSeqs(3), seqs);
    assert.deepEqual(await b.client.waitSeqs(3), seqs);
    assert.equal(hub.stats().channels, 1, 'one subscription for the channel');
    hub.close();
  });

  it('a session joining a channel whose subscription is still being confirmed is attached only once it is confirmed', async () => {
    const hub = newHub();
    const key = `priv.${newId()}`;
    const a = await liveSession([key]);
    const b = await liveSession([key]);
    const first = hub.attach(a.session);
    // Attached before the server had the subscription, a replay for b would read the stream
    // too early: a message stored in between reaches neither the replay nor live delivery.
    await hub.attach(b.session);
    assert.equal(hub.knowsNothingAfter(key, Number.MAX_SAFE_INTEGER), true, 'the channel counts as complete from its start once b is attached');
    await first;
    hub.close();
  });

  it('reads a republished message that never arrived from the stream, before the next one', async () => {
    let seen = 0;
    const hub = newHub(() => ++seen === 2);
    const key = `priv.${newId()}`;
    const s = await liveSession([key]);
    await hub.attach(s.session);
    const seqs = [await f.store(key), await f.store(key), await f.store(key)];
    assert.deepEqual(await s.client.waitSeqs(3), seqs);
    assert.equal(seen, 3, 'the second message was lost to live delivery, the third arrived');
    assert.equal(hub.stats().gapsFilled, 1);
    hub.close();
  });

  it('after a disconnect, catches up on everything stored meanwhile, in order and once, then goes on live', async () => {
    let away = false;
    const hub = newHub(() => away);
    hub.startAt(await f.reader.end());
    const key = `priv.${newId()}`;
    const other = `priv.${newId()}`;
    const s = await liveSession([key]);
    await hub.attach(s.session);
    const first = await f.store(key);
    await s.client.waitSeqs(1);
    away = true;
    hub.noteDisconnect();
    const missed = [await f.store(key), await f.store(other), await f.store(key)];
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(hub.knowsNothingAfter(key, missed[2]!), false, 'after a disconnect nothing is known');
    away = false;
    await hub.catchUp('test');
    const next = await f.store(key);
    assert.deepEqual(await s.client.waitSeqs(4), [first, missed[0], missed[2], next]);
    assert.equal(hub.stats().catchUps, 1);
    hub.close();
  });

  it('after a disconnect, holds live messages from that moment, so the catch-up starts where the hub was', async () => {
    let away = false;
    const hub = newHub(() => away);
    hub.startAt(await f.reader.end());
    const key = `priv.${newId()}`;
    const shared = `priv.${newId()}`;
    const s = await liveSession([key, shared]);
    await hub.attach(s.session);
    const first = await f.store(key);
    await s.client.waitSeqs(1);
    away = true;
    hub.noteDisconnect();
    const lost = [await f.store(key), await f.store(key)];
    await new Promise((r) => setTimeout(r, 100));
    away = false;
    // Reconnected: live messages flow again, on another channel, before the catch-up runs.
    const after = await f.store(shared);
    await new Promise((r) => setTimeout(r, 100));
    await hub.catchUp('nats reconnected');
    assert.deepEqual(await s.client.waitSeqs(4), [first, ...lost, after]);
    hub.close();
  });

  it('a catch-up whose held messages overflow ends under steady traffic and loses nothing', async () => {
    let away = false;
    const hub = new Hub(f.feed(() => away), f.reader, () => f.epochSec, f.log, { lingerMs: 10_000, maxHeldMessages: 5, recentBytes: 0, recentPerChannel: 0 });
    hub.startAt(await f.reader.end());
    const key = `priv.${newId()}`;
    const s = await liveSession([key]);
    await hub.attach(s.session);
    const stored: number[] = [];
    away = true;
    hub.noteDisconnect();
    for (let i = 0; i < 20; i++) stored.push(await f.store(key));
    await new Promise((r) => setTimeout(r, 100));
    away = false;
    let traffic = true;
    const publishing = (async () => {
      const until = Date.now() + 8_000;
      while (traffic && Date.now() < until) stored.push(...(await Promise.all(Array.from({ length: 20 }, () => f.store(key)))));
    })();
    const caughtUp = hub.catchUp('test').then(() => Date.now());
    const finished = await Promise.race([caughtUp, publishing.then(() => undefined)]);
    traffic = false;
    await publishing;
    assert.ok(finished !== undefined, 'the catch-up ended while messages kept arriving');
    stored.sort((a, b) => a - b);
    assert.deepEqual(await s.client.waitSeqs(stored.length, 10_000), stored);
    hub.close();
  });

  it('a catch-up finds what a channel lost before the catch-up point, without any event, instead of hiding it', async () => {
    let dropNext = false;
    let away = false;
    const hub = newHub(() => {
      if (away) return true;
      if (!dropNext) return false;
      dropNext = false;
      return true;
    });
    hub.startAt(await f.reader.end());
    const a = `priv.${newId()}`;
    const b = `priv.${newId()}`;
    const s = await liveSession([a, b]);
    await hub.attach(s.session);
    dropNext = true;
    const a1 = await f.store(a);
    const b1 = await f.store(b);
    await s.client.waitSeqs(1);
    away = true;
    hub.noteDisconnect();
    const a2 = await f.store(a);
    await new Promise((r) => setTimeout(r, 100));
    away = false;
    await hub.catchUp('test');
    const got = await s.client.waitSeqs(3);
    assert.deepEqual([...got].sort((x, y) => x - y), [a1, b1, a2]);
    assert.ok(got.indexOf(a1) < got.indexOf(a2), 'the older message of the channel first');
    hub.close();
  });

  it('notices when the first live message of a new subscription is lost', async () => {
    let seen = 0;
    const hub = newHub(() => ++seen === 1);
    const key = `priv.${newId()}`;
    const s = await liveSession([key]);
    await hub.attach(s.session);
    const seqs = [await f.store(key), await f.store(key)];
    assert.deepEqual(await s.client.waitSeqs(2), seqs);
    hub.close();
  });

  it('knows a channel has nothing newer only when it held the subscription all along', async () => {
    const hub = newHub();
    const key = `priv.${newId()}`;
    const s = await liveSession([key]);
    const before = await f.store(key);
    assert.equal(hub.knowsNothingAfter(key, before), false, 'not subscribed yet');
    await hub.attach(s.session);
    const seq = await f.store(key);
    await s.client.waitSeqs(1);
    assert.equal(hub.knowsNothingAfter(key, seq), true);
    assert.equal(hub.knowsNothingAfter(key, seq - 1), false, 'a message after that sequence was delivered');
    hub.close();
  });

  it('keeps an idle channel subscribed for the linger time, then drops it', async () => {
    const hub = newHub(undefined, 1_000);
    const key = `priv.${newId()}`;
    const s = await liveSession([key]);
    await hub.attach(s.session);
    hub.detach(s.session);
    hub.sweep();
    assert.equal(hub.stats().channels, 1, 'lingers for the next long poll');
    hub.sweep(Date.now() + 1_000);
    assert.equal(hub.stats().channels, 0);
    await eventually('no delivery after the drop', async () => {
      await f.store(key);
      return hub.stats().messagesIn === 0;
    });
    hub.close();
  });
});
