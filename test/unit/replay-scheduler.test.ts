import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/errors/close-codes.ts';
import { Hub } from '../../src/gateway/hub.ts';
import { ReplayReader } from '../../src/gateway/replay-reader.ts';
import { ReplayScheduler } from '../../src/gateway/replay-scheduler.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';
import { newId } from '../helpers/channels.ts';
import { SessionHarness } from '../helpers/session-harness.ts';
import { StreamFixture } from '../helpers/stream-fixture.ts';
import { within } from '../helpers/wait.ts';

/** The replay scheduler on a real stream and real sockets. */
describe('replay scheduler', () => {
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

  const setup = (
    opts: { maxConcurrent?: number; pageMessages?: number; pageBytes?: number; recentBytes?: number; recentPerChannel?: number; clustered?: boolean; drop?: (m: StoredMessage) => boolean } = {},
  ) => {
    const hub = new Hub(f.feed(opts.drop), f.reader, () => f.epochSec, f.log, {
      lingerMs: 10_000,
      maxHeldMessages: 100_000,
      recentBytes: opts.recentBytes ?? 0,
      recentPerChannel: opts.recentPerChannel ?? 0,
    });
    const reader = new ReplayReader(f.reader);
    const scheduler = new ReplayScheduler(
      hub,
      reader,
      f.reader,
      () => f.epochSec,
      { maxConcurrent: opts.maxConcurrent ?? 4, pageMessages: opts.pageMessages ?? 1_000, pageBytes: opts.pageBytes ?? 1 << 20, windowBytes: 64 << 20, liveMayLoseSilently: () => opts.clustered ?? false },
      h.telemetry,
      f.log,
    );
    return { hub, reader, scheduler };
  };

  it('replays what a session missed on all its channels, in order, skipping live-only messages', async () => {
    const { hub, scheduler } = setup();
    const a = `priv.${newId()}`;
    const b = `pub.${newId()}`;
    const from = await f.store(a);
    const stored = [await f.store(b), await f.store(a, 0), await f.store(a), await f.store(b)];
    const s = await h.ws({ keys: [a, b] });
    await hub.attach(s.session);
    scheduler.replay(s.session, from);
    assert.deepEqual(await s.client.waitSeqs(3), [stored[0], stored[2], stored[3]]);
    assert.equal(s.session.isSyncing, false);
    hub.close();
  });

  it('sends a session live at once, without reading, when the hub held its channels all along', async () => {
    const { hub, reader, scheduler } = setup();
    const key = `priv.${newId()}`;
    const first = await h.ws({ keys: [key] });
    first.session.finishSync([]);
    await hub.attach(first.session);
    const seq = await f.store(key);
    await first.client.waitSeqs(1);
    const s = await h.ws({ keys: [key] });
    await hub.attach(s.session);
    const reads = reader.reads;
    scheduler.replay(s.session, seq);
    assert.equal(s.session.isSyncing, false);
    assert.equal(reader.reads, reads, 'no direct get');
    hub.close();
  });

  it('serves a queue of 16 or more replays with one shared scan of the stream', async () => {
    const { hub, scheduler } = setup({ maxConcurrent: 1 });
    const keys = Array.from({ length: 20 }, () => `priv.${newId()}`);
    const from = await f.store(keys[0]!);
    const expected = new Map<string, number[]>();
    for (const k of keys) expected.set(k, [await f.store(k), await f.store(k)]);
    const pairs = await Promise.all(keys.map((k) => h.ws({ keys: [k] })));
    for (const p of pairs) await hub.attach(p.session);
    const scansBefore = f.logs.find('shared replay scan done').length;
    for (const p of pairs) scheduler.replay(p.session, from);
    for (const [i, p] of pairs.entries()) assert.deepEqual(await p.client.waitSeqs(2), expected.get(keys[i]!));
    assert.equal(f.logs.find('shared replay scan done').length, scansBefore + 1);
    hub.close();
  });

  it('serves a wave of replays with a shared scan while replay slots are still free', async () => {
    const { hub, scheduler } = setup({ maxConcurrent: 64 });
    const keys = Array.from({ length: 40 }, () => `priv.${newId()}`);
    const from = await f.store(keys[0]!);
    const expected = new Map<string, number[]>();
    for (const k of keys) expected.set(k, [await f.store(k), await f.store(k)]);
    const pairs = await Promise.all(keys.map((k) => h.ws({ keys: [k] })));
    for (const p of pairs) await hub.attach(p.session);
    const scansBefore = f.logs.find('shared replay scan done').length;
    for (const p of pairs) scheduler.replay(p.session, from);
    for (const [i, p] of pairs.entries()) assert.deepEqual(await p.client.waitSeqs(2), expected.get(keys[i]!));
    assert.ok(f.logs.find('shared replay scan done').length > scansBefore, 'a shared scan');
    hub.close();
  });

  it('serves replays that come after a wave from the stretch its scan read, without scanning it again', async () => {
    const { hub, reader, scheduler } = setup({ maxConcurrent: 1 });
    const keys = Array.from({ length: 22 }, () => `priv.${newId()}`);
    const from = await f.store(keys[0]!);
    const expected = new Map<string, number[]>();
    for (const k of keys) expected.set(k, [await f.store(k), await f.store(k)]);
    const pairs = await Promise.all(keys.map((k) => h.ws({ keys: [k] })));
    // Two late clients: one on a channel this gateway held all along, one on a channel new to it.
    const [held, fresh] = [pairs.pop()!, pairs.pop()!];
    for (const p of pairs) await hub.attach(p.session);
    const scans = (): Array<Record<string, unknown>> => f.logs.find('shared replay scan done');
    const scansBefore = scans().length;
    for (const p of pairs) scheduler.replay(p.session, from);
    for (const [i, p] of pairs.entries()) assert.deepEqual(await p.client.waitSeqs(2), expected.get(keys[i]!));
    const waveEnd = scans().at(-1)!.toSeq as number;
    assert.ok(waveEnd >= expected.get(keys[19]!)![1]!);

    await hub.attach(held.session);
    const reads = reader.reads;
    scheduler.replay(held.session, from);
    assert.deepEqual(await held.client.waitSeqs(2), expected.get(keys[21]!));
    assert.equal(reader.reads, reads, 'no direct get');

    const stored = await f.store(keys[20]!);
    await hub.attach(fresh.session);
    const scansNow = scans().length;
    scheduler.replay(fresh.session, from);
    assert.deepEqual(await fresh.client.waitSeqs(3), [...expected.get(keys[20]!)!, stored]);
    const extension = scans().slice(scansNow);
    assert.equal(extension.length, 1);
    assert.equal(extension[0]!.readAfterSeq, waveEnd, 'only what came after the wave\'s scan was read');
    assert.equal(extension[0]!.toSeq, stored);
    assert.ok(scans().length - scansBefore <= 3);
    hub.close();
  });

  /** A session that was on `keys` and left; the hub keeps the channels (lingering) and their recent messages. */
  const leftAfter = async (hub: Hub, keys: string[]): Promise<number> => {
    const gone = await h.ws({ keys });
    gone.session.finishSync([]);
    await hub.attach(gone.session);
    const from = await f.store(keys[0]!);
    await gone.client.waitSeqs(1);
    hub.detach(gone.session);
    gone.session.close(CloseCode.ServiceRestart);
    return from;
  };

  for (const clustered of [false, true]) {
    it(`replays from the recent messages in memory when the hub held the channels since before the mid (${clustered ? 'in a cluster: after one read of each channel\'s newest message' : 'one server: no read at all'})`, async () => {
      const { hub, reader, scheduler } = setup({ recentBytes: 1 << 20, recentPerChannel: 10, clustered });
      const a = `priv.${newId()}`;
      const b = `pub.${newId()}`;
      const from = await leftAfter(hub, [a, b]);
      const stored = [await f.store(b), await f.store(a, 0), await f.store(a), await f.store(b)];
      assert.equal(await hub.whenSeen(stored[3]!, [a, b]), true);
      const s = await h.ws({ keys: [a, b] });
      await hub.attach(s.session);
      const reads = reader.reads;
      const scans = f.logs.find('shared replay scan done').length;
      scheduler.replay(s.session, from);
      assert.deepEqual(await s.client.waitSeqs(3), [stored[0], stored[2], stored[3]], 'merged in order, live-only skipped');
      assert.equal(scheduler.fromMemory, 1);
      assert.equal(reader.reads, reads + (clustered ? 2 : 0), 'no walk');
      assert.equal(f.logs.find('shared replay scan done').length, scans, 'no scan');
      // Live goes on after the replay, without a duplicate.
      const next = await f.store(a);
      assert.deepEqual(await s.client.waitSeqs(4), [stored[0], stored[2], stored[3], next]);
      hub.close();
    });
  }

  it('reads the stream when the channel had more messages than it keeps, and replays every one', async () => {
    const { hub, reader, scheduler } = setup({ recentBytes: 1 << 20, recentPerChannel: 2 });
    const key = `priv.${newId()}`;
    const from = await leftAfter(hub, [key]);
    const stored = [await f.store(key), await f.store(key), await f.store(key)];
    assert.equal(await hub.whenSeen(stored[2]!, [key]), true);
    const s = await h.ws({ keys: [key] });
    await hub.attach(s.session);
    const reads = reader.reads;
    scheduler.replay(s.session, from);
    assert.deepEqual(await s.client.waitSeqs(3), stored);
    assert.equal(scheduler.fromMemory, 0);
    assert.ok(reader.reads > reads, 'read from the stream');
    // A mid within what is kept is served from memory.
    const again = await h.ws({ keys: [key] });
    await hub.attach(again.session);
    scheduler.replay(again.session, stored[0]!);
    assert.deepEqual(await again.client.waitSeqs(2), stored.slice(1));
    assert.equal(scheduler.fromMemory, 1);
    hub.close();
  });

  it('reads the stream, in a cluster, when its newest message never reached the hub (lost without an event)', async () => {
    let lose = -1;
    const { hub, scheduler } = setup({ recentBytes: 1 << 20, recentPerChannel: 10, clustered: true, drop: (m) => m.seq === lose });
    const key = `priv.${newId()}`;
    const from = await leftAfter(hub, [key]);
    const kept = await f.store(key);
    assert.equal(await hub.whenSeen(kept, [key]), true);
    lose = kept + 1;
    const lost = await f.store(key);
    assert.equal(lost, lose);
    const s = await h.ws({ keys: [key] });
    await hub.attach(s.session);
    scheduler.replay(s.session, from);
    assert.deepEqual(await s.client.waitSeqs(2), [kept, lost]);
    assert.equal(scheduler.fromMemory, 0);
    hub.close();
  });

  it('reads the stream for a channel the gateway did not hold when the messages were stored', async () => {
    const { hub, reader, scheduler } = setup({ recentBytes: 1 << 20, recentPerChannel: 10 });
    const key = `priv.${newId()}`;
    const from = await f.store(key);
    const stored = [await f.store(key), await f.store(key)];
    const s = await h.ws({ keys: [key] });
    await hub.attach(s.session);
    const reads = reader.reads;
    scheduler.replay(s.session, from);
    assert.deepEqual(await s.client.waitSeqs(2), stored);
    assert.equal(scheduler.fromMemory, 0);
    assert.ok(reader.reads > reads);
    hub.close();
  });

  it('hands a replay over only after a catch-up under way ended, and never sends what it replayed again', async () => {
    const { hub, scheduler } = setup();
    const key = `priv.${newId()}`;
    const other = `pub.${newId()}`;
    const first = await h.ws({ keys: [key, other] });
    first.session.finishSync([]);
    await hub.attach(first.session);
    const from = await f.store(key);
    await first.client.waitSeqs(1);
    // A leader change, say: live delivery is held until the catch-up.
    hub.suspectLoss('test');
    const missed = [await f.store(key), await f.store(other), await f.store(key)];
    const s = await h.ws({ keys: [key, other] });
    await hub.attach(s.session);
    scheduler.replay(s.session, from);
    // Longer than a hand-over waits for live delivery that is merely slow.
    await new Promise((r) => setTimeout(r, 2_500));
    assert.deepEqual(s.client.seqs(), [], 'nothing handed over while live delivery is held');
    await hub.catchUp('test');
    const next = await f.store(other);
    assert.deepEqual(await s.client.waitSeqs(4), [...missed, next]);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(s.client.seqs(), [...missed, next], 'each once, in order');
    hub.close();
  });

  it('hands a WebSocket one page and closes it with 1013, so it resumes from the page end', async () => {
    const { hub, scheduler } = setup({ pageMessages: 2 });
    const key = `priv.${newId()}`;
    const from = await f.store(key);
    const seqs = [await f.store(key), await f.store(key), await f.store(key)];
    const s = await h.ws({ keys: [key] });
    await hub.attach(s.session);
    scheduler.replay(s.session, from);
    assert.deepEqual(await s.client.waitSeqs(2), seqs.slice(0, 2));
    const end = await within('the close', s.client.ended, 5_000);
    assert.deepEqual(end, { kind: 'closed', code: CloseCode.TryAgainLater, reason: 'Try again later.' });
    hub.close();
  });

  it('closes the session with 4011 when the stream cannot be read', async () => {
    const { hub, reader } = setup();
    const key = `priv.${newId()}`;
    const s = await h.ws({ keys: [key] });
    const broken = new ReplayScheduler(
      hub,
      Object.assign(Object.create(reader) as ReplayReader, { readPage: () => Promise.reject(new Error('storage gone')) }),
      f.reader,
      () => f.epochSec,
      { maxConcurrent: 1, pageMessages: 10, pageBytes: 1 << 20, windowBytes: 64 << 20, liveMayLoseSilently: () => false },
      h.telemetry,
      f.log,
    );
    broken.replay(s.session, 1);
    const end = await within('the close', s.client.ended, 5_000);
    assert.deepEqual(end, { kind: 'closed', code: 4011, reason: "4011: Couldn't get last messages." });
    hub.close();
  });
});
