import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newShared, newUser } from '../helpers/channels.ts';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { check, type History } from './lib/checker.ts';
import { newClientRec, type ClientRec } from './lib/delivery-record.ts';
import { JetpullProcess, type ProcessEvent } from './lib/jetpull-process.ts';
import { LongPollSubscriber } from './lib/long-poll-subscriber.ts';
import { natsBinary } from './lib/nats-cluster.ts';
import { registerTempDir, removeTempDir } from './lib/process-reaper.ts';
import { StreamAdmin } from './lib/stream-admin.ts';
import { PublishLoad, type PublishRec } from './lib/publish-load.ts';
import { Rng } from './lib/rng.ts';
import { dropMessage, repeatMessage } from './lib/tamper.ts';
import { waitFor } from './lib/time.ts';
import type { PhaseRec } from './lib/timeline.ts';
import { WsSubscriber } from './lib/ws-subscriber.ts';

/**
 * The checker must be able to fail. On a real nats-server and jetpull process,
 * with real sockets, one client drops a delivery before its application sees it and
 * another hands one message to its application a second time; the checker has to
 * name exactly those, and nothing for the honest clients. Then its rules on small
 * hand-made histories (who should get what, process findings, phases).
 */

describe('checker self-test on real deliveries', { timeout: 120_000 }, () => {
  let dir: string;
  let nats: LocalNats;
  let server: JetpullProcess;
  const events: ProcessEvent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'jetpull-checker-'));
    registerTempDir(dir);
    nats = await startLocalNats({ binary: natsBinary(), storeDir: join(dir, 'store'), port: -1 });
    server = await JetpullProcess.create('all-in-one', 'all', nats.url, { PUSH_STORAGE__STREAM_REPLICAS: '1' }, events);
    await server.start();
  });

  after(async () => {
    await server?.stop(5_000);
    await nats?.stop();
    if (dir) removeTempDir(dir);
  });

  it('reports the deliberately dropped message as lost and the repeated one as a visible duplicate, and nothing else', async () => {
    const rng = new Rng(7);
    const shared = newShared();
    const gw = { name: 'all-in-one', wsBase: () => server.wsBase, base: () => server.base };
    const client = (id: string) => {
      const u = newUser();
      return { id, channelId: `${u.token}/${shared.token}`, channels: [u.priv, shared.id], gateways: [gw] };
    };
    const honest = new WsSubscriber({ ...client('honest-ws'), format: 'text' }, rng);
    const dropper = new WsSubscriber({ ...client('dropper'), format: 'text' }, rng);
    const repeater = new WsSubscriber({ ...client('repeater'), format: 'binary' }, rng);
    const poller = new LongPollSubscriber({ ...client('honest-lp'), format: 'text' }, rng);
    const subs = [honest, dropper, repeater, poller];
    const load = new PublishLoad(() => server.base, { shared: shared.id, privates: [] }, rng, { rate: 1, retryDeadlineMs: 10_000, bodyBytes: 120 }, 'selftest');
    try {
      for (const s of subs) s.start();
      // Warm-up until every client got a first message: from then on it must get everything.
      const warm = waitFor(() => subs.every((s) => s.rec.subscribedAt !== undefined), 15_000, 50);
      while (!(await Promise.race([warm, new Promise<false>((r) => setTimeout(() => r(false), 300))]))) await load.publishOne([shared.id], 'warm-up', 120);
      const first = load.history.length + 1;
      const dropped = first + 3;
      const repeated = first + 5;
      dropper.tamper = dropMessage(dropped);
      repeater.tamper = repeatMessage(repeated, 12);
      // One at a time, in two groups further apart than the coalescing window, so the
      // repeat lands in a later frame than the one that trimmed its mid away.
      for (let i = 0; i < 20; i++) await load.publishOne([shared.id], 'load', 120);
      await new Promise((r) => setTimeout(r, 700));
      for (let i = 0; i < 10; i++) await load.publishOne([shared.id], 'load', 120);
      const last = load.history.at(-1)!.n;
      await waitFor(() => subs.every((s) => s.rec.deliveries.some((d) => d.n === last)), 10_000, 50);
      const phases: PhaseRec[] = [{ name: 'self-test', startAt: load.history[0]!.sentAt - 1, faultAt: undefined, clearedAt: undefined, endAt: Date.now() + 1, notes: [] }];
      // Where each message is stored, as the suite reads it back for its verdicts.
      const admin = await StreamAdmin.open([nats.url]);
      const copies = await admin.channelCopies(`priv.${shared.id}`).finally(() => admin.close());
      const stored = new Map([[shared.id, new Map(copies.filter((c) => c.n !== undefined).map((c) => [c.n!, [c.seq]]))]]);
      assert.equal(stored.get(shared.id)!.size, load.history.length, 'every publish is read back from the stream');
      const f = check({ origin: phases[0]!.startAt, endAt: Date.now(), publishes: load.history, clients: subs.map((s) => s.rec), phases, processEvents: events, logs: [], stored });

      assert.deepEqual(f.lost.map((l) => [l.client, l.n]), [['dropper', dropped]], 'exactly the dropped message is lost');
      assert.match(f.lost[0]!.verdict, /^live delivery skipped it/, 'the verdict: the open connection delivered later messages but not this one');
      assert.deepEqual(f.lost[0]!.storedSeqs, stored.get(shared.id)!.get(dropped), 'the lost message is named by its stream sequence');
      assert.deepEqual(f.duplicates.map((d) => [d.client, d.n, d.copies.length]), [['repeater', repeated, 2]], 'exactly the repeated message is a visible duplicate');
      assert.ok(f.midIssues.some((m) => m.client === 'repeater' && m.kind === 'within-connection'), 'the repeated mid is reported as not increasing');
      assert.equal(f.totals.unexpectedExits, 0);
      assert.equal(f.totals.expectedDeliveries, 4 * 30);
    } finally {
      for (const s of subs) s.close();
      await load.settle();
    }
  });
});

describe('checker rules on hand-made histories', () => {
  const pub = (n: number, channels: string[], sentAt: number, ackAt: number | undefined): PublishRec => ({
    n, channels, bytes: 10, purpose: 'load', sentAt, ackAt, attempts: 1, refusals: {}, failed: ackAt === undefined,
  });
  const client = (id: string, channels: string[], subscribedAt: number | undefined, got: number[]): ClientRec => {
    const rec = newClientRec(id, 'ws', 'text', channels, ['g']);
    rec.subscribedAt = subscribedAt;
    rec.conns.push({ conn: 1, gateway: 'g', startMid: undefined, startedAt: 0, openedAt: 0, endedAt: undefined, end: undefined, messages: got.length });
    got.forEach((n, i) => rec.deliveries.push({ conn: 1, gateway: 'g', mid: `1000000000${String(n).padStart(16, '0')}`, n, at: 100 + i, visible: true, frame: i }));
    return rec;
  };
  const phases: PhaseRec[] = [
    { name: 'a', startAt: 0, faultAt: 10, clearedAt: 20, endAt: 50, notes: [] },
    { name: 'b', startAt: 50, faultAt: undefined, clearedAt: undefined, endAt: 100, notes: [] },
  ];
  const base = (over: Partial<History>): History => ({ origin: 0, endAt: 200, publishes: [], clients: [], phases, processEvents: [], logs: [], ...over });

  it('expects a message only from subscribers of one of its channels, subscribed before it was sent, alive at the end, and only when it got a 200', () => {
    const stopped = client('stopped', ['s'], 0, []);
    stopped.stoppedAt = 150;
    const f = check(base({
      publishes: [pub(1, ['s'], 5, 6), pub(2, ['s'], 30, undefined), pub(3, ['p'], 40, 41), pub(4, ['s'], 60, 61)],
      clients: [client('late', ['s'], 20, []), client('other', ['q'], 0, []), stopped, client('ok', ['s', 'p'], 0, [1, 3, 4])],
    }));
    assert.deepEqual(f.lost.map((l) => [l.client, l.n, l.phase]), [['late', 4, 'b']]);
    assert.equal(f.totals.expectedDeliveries, 4);
  });

  it('says when a lost message is not in the stream at all', () => {
    const f = check(base({
      publishes: [pub(1, ['s'], 5, 6), pub(2, ['s'], 7, 8)],
      clients: [client('c', ['s'], 0, [1])],
      stored: new Map([['s', new Map([[1, [1]]])]]),
    }));
    assert.equal(f.lost.length, 1);
    assert.match(f.lost[0]!.verdict, /not in the stream/);
  });

  it('reports a mid that reached clients as two different messages', () => {
    const a = client('a', ['s'], 0, [1]);
    const b = client('b', ['s'], 0, [2]);
    b.deliveries[0]!.mid = a.deliveries[0]!.mid;
    const f = check(base({ publishes: [pub(1, ['s'], 5, 6), pub(2, ['s'], 7, 8)], clients: [a, b] }));
    assert.deepEqual(f.midConflicts.map((m) => [m.first.n, m.second.n]), [[1, 2]]);
  });

  it('reports a process that exited without being killed, and one not ready at the end', () => {
    const f = check(base({
      processEvents: [
        { at: 10, process: 'gw', what: 'killed', expected: true },
        { at: 10, process: 'gw', what: 'exited', expected: true },
        { at: 30, process: 'pub', what: 'exited', expected: false, detail: 'code 1' },
        { at: 60, process: 'gw', what: 'not-ready', expected: false },
      ],
    }));
    assert.deepEqual(f.unexpectedExits.map((e) => e.process), ['pub']);
    assert.deepEqual(f.notReadyAtEnd, ['gw']);
  });

  it('measures recovery from the fault and from its clearing', () => {
    const f = check(base({ publishes: [pub(1, ['s'], 1, 2), pub(2, ['s'], 12, 30), pub(3, ['s'], 21, 25)], clients: [] }));
    const a = f.phases.find((p) => p.name === 'a')!;
    assert.equal(a.firstAckAfterFaultMs, 15);
    assert.equal(a.firstAckAfterClearMs, 5);
    assert.equal(a.longestAckGapMs, 23);
  });
});
