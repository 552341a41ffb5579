import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/errors/close-codes.ts';
import { Hub } from '../../src/gateway/hub.ts';
import { ReplayReader } from '../../src/gateway/replay-reader.ts';
import { ReplayScheduler } from '../../src/gateway/replay-scheduler.ts';
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

  const setup = (opts: { maxConcurrent?: number; pageMessages?: number; pageBytes?: number } = {}) => {
    const hub = new Hub(f.feed(), f.reader, () => f.epochSec, f.log, { lingerMs: 10_000, maxHeldMessages: 100_000 });
    const reader = new ReplayReader(f.reader);
    const scheduler = new ReplayScheduler(
      hub,
      reader,
      f.reader,
      () => f.epochSec,
      { maxConcurrent: opts.maxConcurrent ?? 4, pageMessages: opts.pageMessages ?? 1_000, pageBytes: opts.pageBytes ?? 1 << 20, windowBytes: 64 << 20 },
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
      { maxConcurrent: 1, pageMessages: 10, pageBytes: 1 << 20, windowBytes: 64 << 20 },
      h.telemetry,
      f.log,
    );
    broken.replay(s.session, 1);
    const end = await within('the close', s.client.ended, 5_000);
    assert.deepEqual(end, { kind: 'closed', code: 4011, reason: "4011: Couldn't get last messages." });
    hub.close();
  });
});
