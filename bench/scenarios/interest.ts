import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { startNatsNodes, type NatsNode, type NatsNodes } from '../lib/nats-nodes.ts';
import { ResourceSampler } from '../lib/proc.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import type { Scenario } from '../lib/scenario.ts';
import { fmtInt, log, nowMs, randomHexId, round, sleep } from '../lib/util.ts';

/**
 * What live subscriptions cost NATS in a 3-node cluster, as gateways hold them (one
 * core subscription per channel to `push.live.priv.<id>`, src/nats/live-feed.ts):
 * one connection on n1 subscribes in steps of `step` subjects; after each step the
 * time until n2 and n3 see the interest (subsz), each node's RSS, and the client's heap.
 * Then the same subjects from a second connection on n2 (a channel held by gateways on
 * two nodes), the 32 wildcard subscriptions of subject sharding
 * (`push.live.<kind>.<hex digit>.>`), and the time until every node forgets the
 * interest when the first connection closes (a gateway that goes away), and what a
 * message costs nats-server once it goes to every gateway's wildcard. The servers
 * run with GOGC=2 and a GC trace, so memory is read as RSS and as live heap.
 */

interface Step {
  subscriptions: number;
  /** From the flush of the step's subscriptions until both other nodes counted them. */
  propagationMs: number;
  /** Subscriptions each node holds (subsz num_subscriptions). */
  subsByNode: Record<string, number>;
  rssMiBByNode: Record<string, number>;
  /** Go live heap, on the last step. */
  liveHeapMiBByNode?: Record<string, number>;
  clientHeapMiB: number;
}

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function subsOf(n: NatsNode): Promise<number> {
  return (await n.monitor<{ num_subscriptions: number }>('subsz')).num_subscriptions;
}

interface Snapshot {
  subs: Record<string, number>;
  rss: Record<string, number>;
  /** Go live heap after the latest collection (only when asked: it provokes collections). */
  live?: Record<string, number>;
}

async function snapshot(nodes: NatsNodes, withHeap = false): Promise<Snapshot> {
  const snap: Snapshot = { subs: {}, rss: {}, ...(withHeap ? { live: {} } : {}) };
  for (const n of nodes.nodes) {
    snap.subs[n.name] = await subsOf(n);
    if (snap.live !== undefined) snap.live[n.name] = await n.liveHeapMiB();
    snap.rss[n.name] = round(n.rssKiB() / 1024, 1);
  }
  return snap;
}

/** Waits until every node in `names` counts at least `want[name]` (or at most, when `down`). */
async function waitCounts(nodes: NatsNodes, want: Record<string, number>, deadline: number, down = false): Promise<number> {
  const t0 = nowMs();
  for (;;) {
    let ok = true;
    for (const [name, count] of Object.entries(want)) {
      const have = await subsOf(nodes.byName(name));
      if (down ? have > count : have < count) ok = false;
    }
    if (ok) return round(nowMs() - t0, 0);
    if (nowMs() > deadline) throw new Error(`interest did not reach ${JSON.stringify(want)} in time`);
    await sleep(20);
  }
}

interface FanoutRun {
  subscribers: number;
  messages: number;
  natsCpuMs: number;
  natsUsPerMessage: number;
  natsUsPerCopy: number;
}

/**
 * What subject sharding without routing by shard costs nats-server: every message goes
 * to every gateway's wildcard. M messages of a republished size (200-byte body, the
 * republish headers) to 1 and to G subscribers of `push.live.priv.>` on one server; the
 * server's CPU per copy is the difference. Core NATS only, so the stream is not involved.
 */
async function fanoutCost(node: NatsNode, messages: number, gateways: number, deadline: number): Promise<FanoutRun[]> {
  const runs: FanoutRun[] = [];
  if (messages <= 0) return runs;
  const body = Buffer.alloc(200, 0x61);
  const pub = await connect({ servers: node.url, noAsyncTraces: true });
  try {
    for (const g of [1, gateways]) {
      const subs = await Promise.all(Array.from({ length: g }, () => connect({ servers: node.url, noAsyncTraces: true })));
      const got = new Array<number>(g).fill(0);
      subs.forEach((c, i) => c.subscribe('push.live.priv.>', { callback: () => void got[i]!++ }));
      await Promise.all(subs.map((c) => c.flush()));
      const cpu0 = node.cpuMs();
      for (let i = 0; i < messages; i++) {
        const h = headers();
        h.set('Nats-Stream', 'PUSH_MESSAGES');
        h.set('Nats-Subject', 'push.msg.priv.0123456789abcdef0123456789abcdef');
        h.set('Nats-Sequence', String(i + 1));
        h.set('Nats-Last-Sequence', String(i));
        h.set('Jp-Expiry', '60');
        pub.publish(`push.live.priv.${(i % 16).toString(16)}${randomHexId().slice(1)}`, body, { headers: h });
        if (i % 1000 === 999) await pub.flush();
      }
      await pub.flush();
      while (got.some((n) => n < messages) && nowMs() < deadline) await sleep(20);
      const natsCpuMs = node.cpuMs() - cpu0;
      runs.push({ subscribers: g, messages, natsCpuMs: Math.round(natsCpuMs), natsUsPerMessage: round((natsCpuMs * 1000) / messages, 2), natsUsPerCopy: NaN });
      for (const c of subs) await c.close();
    }
  } finally {
    await pub.close();
  }
  const [one, many] = runs;
  if (one !== undefined && many !== undefined && many.subscribers > 1) {
    many.natsUsPerCopy = round((many.natsUsPerMessage - one.natsUsPerMessage) / (many.subscribers - 1), 2);
    one.natsUsPerCopy = one.natsUsPerMessage;
  }
  log(`wildcard fan-out: ${runs.map((r) => `${r.subscribers} subscriber(s) ${r.natsUsPerMessage} us per message`).join(', ')}`);
  return runs;
}

const heapMiB = (): number => round(process.memoryUsage().heapUsed / 1024 / 1024, 1);

export const interestScenario: Scenario = {
  name: 'interest',
  summary: 'nats-server memory and interest propagation per live subscription in a 3-node cluster; wildcard shards',
  options: {
    subscriptions: { type: 'number', default: 100000, help: 'per-channel subscriptions from one connection (S)' },
    step: { type: 'number', default: 10000, help: 'subscriptions added per step' },
    settleS: { type: 'number', default: 2, help: 'seconds after each step before memory is read' },
    fanoutMessages: { type: 'number', default: 100000, help: 'messages published to the wildcard subscribers at the end (0: skip)' },
    fanoutGateways: { type: 'number', default: 20, help: 'wildcard subscribers (gateways) of the last fan-out round' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const [total, step, settleMs] = [o.num('subscriptions'), o.num('step'), o.num('settleS') * 1000];
    const nodes = await startNatsNodes(3, o.optStr('natsBinary'), 'bench-interest', { gcTrace: true });
    const sampler = new ResourceSampler(nodes.nodes.map((n) => ({ name: n.name, pid: n.pid }))).start();
    const conns: NatsConnection[] = [];
    try {
      const [n1, n2] = [nodes.byName('n1'), nodes.byName('n2')];
      const a = await connect({ servers: n1.url, noAsyncTraces: true });
      conns.push(a);
      await sleep(settleMs);
      gc();
      const base = await snapshot(nodes, true);
      const baseHeap = heapMiB();
      log(`baseline subs ${JSON.stringify(base.subs)}, RSS MiB ${JSON.stringify(base.rss)}, client heap ${baseHeap} MiB`);
      const subjects: string[] = [];
      const steps: Step[] = [];
      const noop = (): void => undefined;
      while (subjects.length < total) {
        const n = Math.min(step, total - subjects.length);
        for (let i = 0; i < n; i++) {
          const s = `push.live.priv.${randomHexId()}`;
          subjects.push(s);
          a.subscribe(s, { callback: noop });
        }
        await a.flush();
        const want = subjects.length;
        const propagationMs = await waitCounts(nodes, { n1: base.subs.n1! + want, n2: base.subs.n2! + want, n3: base.subs.n3! + want }, ctx.deadline);
        await sleep(settleMs);
        gc();
        const snap = await snapshot(nodes, subjects.length >= total);
        steps.push({ subscriptions: want, propagationMs, subsByNode: snap.subs, rssMiBByNode: snap.rss, ...(snap.live === undefined ? {} : { liveHeapMiBByNode: snap.live }), clientHeapMiB: heapMiB() });
        log(`${fmtInt(want)} subscriptions: seen on every node ${propagationMs} ms after the flush; RSS MiB ${JSON.stringify(snap.rss)}; client heap ${heapMiB()} MiB`);
      }
      const last = steps[steps.length - 1]!;
      const perSubBytes = (name: string): number => round(((last.rssMiBByNode[name]! - base.rss[name]!) * 1024 * 1024) / total, 0);
      const perSubLive = (name: string): number => round(((last.liveHeapMiBByNode![name]! - base.live![name]!) * 1024 * 1024) / total, 0);

      // The same channels held by a gateway on another node: n3 now hears of each from two routes.
      const b = await connect({ servers: n2.url, noAsyncTraces: true });
      conns.push(b);
      const tDup = nowMs();
      for (const s of subjects) b.subscribe(s, { callback: noop });
      await b.flush();
      const dupWant = { n1: base.subs.n1! + 2 * total, n2: base.subs.n2! + 2 * total, n3: base.subs.n3! + 2 * total };
      let duplicateSeenMs: number | undefined;
      try {
        await waitCounts(nodes, dupWant, Math.min(ctx.deadline, nowMs() + 60_000));
        duplicateSeenMs = round(nowMs() - tDup, 0);
      } catch {
        // Not every release keeps a route entry per origin: what each node holds is recorded below.
      }
      await sleep(settleMs);
      const dup = await snapshot(nodes);
      log(`same subjects from n2 too: subs ${JSON.stringify(dup.subs)}, RSS MiB ${JSON.stringify(dup.rss)}`);
      b.close();
      await b.closed();
      conns.pop();
      await waitCounts(nodes, { n1: base.subs.n1! + total, n2: base.subs.n2! + total, n3: base.subs.n3! + total }, ctx.deadline, true);

      // Subject sharding: 16 wildcards per kind instead of a subscription per channel.
      const w = await connect({ servers: n1.url, noAsyncTraces: true });
      conns.push(w);
      const beforeWild = await snapshot(nodes);
      for (const kind of ['priv', 'pub']) for (let h = 0; h < 16; h++) w.subscribe(`push.live.${kind}.${h.toString(16)}.>`, { callback: noop });
      await w.flush();
      await waitCounts(nodes, { n1: beforeWild.subs.n1! + 32, n2: beforeWild.subs.n2! + 32, n3: beforeWild.subs.n3! + 32 }, ctx.deadline);
      const afterWild = await snapshot(nodes);

      // A gateway going away: how long until every node has dropped its interest.
      await sleep(settleMs);
      const tClose = nowMs();
      await a.close();
      conns.splice(conns.indexOf(a), 1);
      const goneMs = await waitCounts(nodes, { n1: afterWild.subs.n1! - total, n2: afterWild.subs.n2! - total, n3: afterWild.subs.n3! - total }, ctx.deadline, true);
      const removal = round(nowMs() - tClose, 0);
      // On a server of its own with the default GC: the cluster's GOGC=2 would be counted as CPU.
      const plain = await startNatsNodes(1, o.optStr('natsBinary'), 'bench-fanout');
      const fanout = await fanoutCost(plain.nodes[0]!, o.num('fanoutMessages'), o.num('fanoutGateways'), ctx.deadline).finally(() => plain.stop());
      const results = {
        baseline: base,
        steps,
        bytesPerSubscription: { n1Local: perSubBytes('n1'), n2Route: perSubBytes('n2'), n3Route: perSubBytes('n3') },
        liveHeapBytesPerSubscription: { n1Local: perSubLive('n1'), n2Route: perSubLive('n2'), n3Route: perSubLive('n3') },
        clientBytesPerSubscription: round(((last.clientHeapMiB - baseHeap) * 1024 * 1024) / total, 0),
        subscribeAndPropagateMs: steps.reduce((sum, s) => sum + s.propagationMs, 0),
        duplicateFromSecondNode: { ...dup, seenEverywhereMs: duplicateSeenMs },
        wildcards: { added: 32, subsBefore: beforeWild.subs, subsAfter: afterWild.subs },
        removalOnCloseMs: removal,
        removalWaitMs: goneMs,
        wildcardFanout: fanout,
      };
      const window = sampler.stop();
      const table: TableRow[] = [
        ['subscriptions', `${fmtInt(total)} from one connection on n1, in steps of ${fmtInt(step)}`],
        ['nats-server RSS per subscription', `n1 (local) ${results.bytesPerSubscription.n1Local} B, n2 (route) ${results.bytesPerSubscription.n2Route} B, n3 (route) ${results.bytesPerSubscription.n3Route} B`],
        ['nats-server live heap per subscription', `n1 (local) ${results.liveHeapBytesPerSubscription.n1Local} B, n2 (route) ${results.liveHeapBytesPerSubscription.n2Route} B, n3 (route) ${results.liveHeapBytesPerSubscription.n3Route} B (Go heap after GC, GOGC=2)`],
        ['client heap per subscription', `${results.clientBytesPerSubscription} B`],
        ['propagation per step', steps.map((s) => `${s.propagationMs}`).join(' / ') + ' ms'],
        ['held from two nodes', `subs ${JSON.stringify(dup.subs)}, RSS MiB ${JSON.stringify(dup.rss)}`],
        ['32 shard wildcards', `subs ${JSON.stringify(beforeWild.subs)} -> ${JSON.stringify(afterWild.subs)}`],
        ['interest gone after close', `${removal} ms on every node`],
        ...fanout.map((f): TableRow => [`a message to ${f.subscribers} wildcard subscriber(s)`, `nats-server ${f.natsUsPerMessage} us CPU per published message, ${f.natsUsPerCopy} us per copy sent`]),
      ];
      return { params: o.all(), results, window, windows: [{ label: 'interest', window }], table, problems: [] };
    } finally {
      for (const c of conns) await c.close().catch(() => undefined);
      await nodes.stop();
    }
  },
};
