import { closeAll, connectWsMany } from '../lib/connect.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { ResourceSampler } from '../lib/proc.ts';
import { expectAck, publishBatches, runPaced, textPublishRequest, type BatchItem, type PacedResult } from '../lib/publish.ts';
import { HttpPool } from '../lib/raw-http.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { benchBody, lastMid, scanBinary, scanText, type MessageSink } from '../lib/scan.ts';
import { addressesFor, deploymentFor, privateToken, type Scenario } from '../lib/scenario.ts';
import { Samples, fmtLatency } from '../lib/stats.ts';
import { fmtInt, log, nowMs, randomHexId, round, sleep, waitUntil } from '../lib/util.ts';

/**
 * Reconnect storm with replay. C clients, each on its own private channel, connect,
 * learn their mid from a first message and disconnect; K messages per channel are
 * published with Message-Expiry 3600; then all reconnect at once with mid=<their last
 * mid> and must each receive exactly their K messages. Meanwhile L live clients get a
 * live stream (round-robin, so no live message waits for a coalescing window) whose
 * latency is compared before and during the storm.
 */

type Phase = 'baseline' | 'bulk' | 'storm' | 'after';

class Counters {
  learned = 0;
  complete = 0;
  lastCompleteAt = 0;
  unique = 0;
  dups = 0;
  stale = 0;
  misrouted = 0;
  unexpected = 0;
  closedDuringStorm = 0;
  storm = false;
}

class ReplayClient implements MessageSink {
  got: Uint8Array;
  unique = 0;
  mid: string | undefined;
  now = 0;
  learning = true;
  constructor(
    private readonly c: Counters,
    private readonly index: number,
    private readonly k: number,
    private readonly binary: boolean,
  ) {
    this.got = new Uint8Array(k);
  }

  onMsg(seq: number, c: number): void {
    const s = this.c;
    if (c !== this.index) s.misrouted++;
    if (seq === this.k) {
      // The message the client learned its mid from: never again after the reconnect.
      if (this.learning) {
        if (this.mid === undefined) s.learned++;
      } else {
        s.stale++;
      }
      return;
    }
    if (seq < 0 || seq > this.k) {
      s.unexpected++;
      return;
    }
    if (this.got[seq] === 0) {
      this.got[seq] = 1;
      this.unique++;
      s.unique++;
      if (this.unique === this.k) {
        s.complete++;
        s.lastCompleteAt = this.now;
      }
    } else {
      s.dups++;
    }
  }

  onMessage(payload: Buffer, binary: boolean): void {
    this.now = nowMs();
    if (binary || this.binary) scanBinary(payload, this, this.learning);
    else scanText(payload, this, this.learning);
    if (this.learning && lastMid !== undefined) this.mid = lastMid;
  }
}

export const replayScenario: Scenario = {
  name: 'replay',
  summary: 'C clients reconnect at once with their mid after K messages each: catch-up time, losses, live latency meanwhile',
  options: {
    clients: { type: 'number', default: 10000, help: 'replaying clients, one private channel each (C)' },
    messagesPerClient: { type: 'number', default: 10, help: 'messages published to each channel while disconnected (K)' },
    liveClients: { type: 'number', default: 100, help: 'clients receiving the live stream (L)' },
    liveRate: { type: 'number', default: 50, help: 'live messages per second, round-robin over the live clients' },
    reconnectConcurrency: { type: 'number', default: 500, help: 'reconnect handshakes in flight during the storm' },
    batchSize: { type: 'number', default: 100, help: 'messages per protobuf publish request (bulk load)' },
    publishConcurrency: { type: 'number', default: 8, help: 'protobuf publish requests in flight (bulk load)' },
    baselineS: { type: 'number', default: 3, help: 'live-only time before the bulk load (latency baseline)' },
    catchUpTimeoutS: { type: 'number', default: 300, help: 'longest wait for every client to catch up (what is missing then counts as lost)' },
    binaryMode: { type: 'boolean', default: false, help: 'connect with binaryMode=true' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const C = o.num('clients');
    const K = o.num('messagesPerClient');
    const L = o.num('liveClients');
    const binary = o.bool('binaryMode');
    requireFds(C + L, o.num('publishConcurrency') + 16, 'replay');
    const dep = await deploymentFor(ctx);
    const pools: HttpPool[] = [];
    const allConns: RawWs[] = [];
    let liveStop = false;
    try {
      if (dep.jetpullPid !== undefined) requireServerFds(dep.jetpullPid, 'jetpull', C + L, o.num('publishConcurrency') + 16);
      const bodyBytes = o.num('bodyBytes');
      const addresses = addressesFor(ctx, C + L);
      const counters = new Counters();
      const privs = Array.from({ length: C }, () => randomHexId());
      const clients = privs.map((_, i) => new ReplayClient(counters, i, K, binary));
      const wsPath = (priv: string, mid?: string): string =>
        `/bitrix/subws/?CHANNEL_ID=${privateToken(dep, priv)}${binary ? '&binaryMode=true' : ''}${mid ? `&mid=${mid}` : ''}&revision=19`;
      const batchPool = new HttpPool(dep.host, dep.port, o.num('publishConcurrency'));
      const livePool = new HttpPool(dep.host, dep.port, 4);
      pools.push(batchPool, livePool);

      // Live clients.
      const livePrivs = Array.from({ length: L }, () => randomHexId());
      let phase: Phase = 'baseline';
      const liveLat: Record<Phase, Samples> = { baseline: new Samples(), bulk: new Samples(), storm: new Samples(), after: new Samples() };
      const liveTotal = Math.ceil(o.num('liveRate') * (ctx.opts.num('timeoutS') + 60));
      const liveGot = new Uint8Array(Math.min(liveTotal, 50_000_000));
      const liveAcked = new Uint8Array(liveGot.length);
      let liveDups = 0;
      let liveMisrouted = 0;
      const liveSinks = livePrivs.map((_, li) => {
        const sink = {
          now: 0,
          onMsg(seq: number, c: number, t: number) {
            if (seq < 0 || seq >= liveGot.length) return;
            if (c !== li) liveMisrouted++;
            if (liveGot[seq] === 0) {
              liveGot[seq] = 1;
              liveLat[phase].add(this.now - t);
            } else {
              liveDups++;
            }
          },
        };
        return sink;
      });
      const live = await connectWsMany({
        count: L,
        concurrency: o.num('connectConcurrency'),
        addresses,
        deadline: ctx.deadline,
        label: 'live clients',
        host: dep.host,
        port: dep.port,
        timeoutMs: o.num('connectTimeoutS') * 1000,
        path: (i) => wsPath(livePrivs[i]!),
        handlers: (i) => ({
          onMessage: (p, b) => {
            const s = liveSinks[i]!;
            s.now = nowMs();
            if (b || binary) scanBinary(p, s);
            else scanText(p, s);
          },
        }),
      });
      allConns.push(...live.conns);

      // Phase 1: connect, learn a mid, disconnect.
      log(`replay: connecting ${C} clients from ${addresses.join(', ')}`);
      const first = await connectWsMany({
        count: C,
        concurrency: o.num('connectConcurrency'),
        addresses,
        deadline: Math.min(ctx.deadline, nowMs() + Math.max(60_000, C * 10)),
        label: 'replay clients',
        host: dep.host,
        port: dep.port,
        timeoutMs: o.num('connectTimeoutS') * 1000,
        path: (i) => wsPath(privs[i]!),
        handlers: (i) => ({ onMessage: (p, b) => clients[i]!.onMessage(p, b) }),
      });
      allConns.push(...first.conns);
      log(`replay: ${C} connected in ${round(first.ms / 1000, 2)} s; publishing one message each to learn a mid`);
      const learnBy = Math.min(ctx.deadline, nowMs() + 60_000);
      while (clients.some((c) => c.mid === undefined) && nowMs() < learnBy) {
        dep.assertAlive();
        const items: BatchItem[] = [];
        clients.forEach((c, i) => {
          if (c.mid === undefined) items.push({ channel: privs[i]!, body: benchBody(K, i, nowMs(), bodyBytes), expirySec: 3600 });
        });
        await publishBatches(batchPool, dep.host, dep.port, items, o.num('batchSize'), learnBy);
        await waitUntil(() => clients.every((c) => c.mid !== undefined), { deadline: Math.min(learnBy, nowMs() + 3_000), intervalMs: 50 });
      }
      const learned = clients.filter((c) => c.mid !== undefined).length;
      if (learned < C) throw new Error(`replay: only ${learned}/${C} clients learned a mid`);
      for (const c of clients) c.learning = false;
      await closeAll(first.conns, 15_000);

      // Live stream for the rest of the run.
      const liveRun: Promise<PacedResult> = runPaced({
        rate: o.num('liveRate'),
        durationMs: Math.max(0, ctx.deadline - nowMs()),
        maxInFlight: 4,
        deadline: ctx.deadline,
        stop: () => liveStop,
        fire: async (i) => {
          if (i >= liveGot.length) return;
          const li = i % L;
          expectAck(await livePool.request(textPublishRequest(dep.host, dep.port, livePrivs[li]!, benchBody(i, li, nowMs(), bodyBytes), 60)));
          liveAcked[i] = 1;
        },
      });
      log(`replay: live stream ${o.num('liveRate')}/s to ${L} clients; baseline ${o.num('baselineS')} s`);
      await sleep(o.num('baselineS') * 1000);

      // Phase 2: K messages per channel while everyone is away.
      phase = 'bulk';
      const bulkItems: BatchItem[] = [];
      for (let k = 0; k < K; k++) for (let i = 0; i < C; i++) bulkItems.push({ channel: privs[i]!, body: benchBody(k, i, nowMs(), bodyBytes), expirySec: 3600 });
      log(`replay: publishing ${fmtInt(bulkItems.length)} messages (${K} per channel) in protobuf batches of ${o.num('batchSize')}`);
      const bulkSampler = new ResourceSampler(dep.targets).start();
      const bulkStart = nowMs();
      const bulk = await publishBatches(batchPool, dep.host, dep.port, bulkItems, o.num('batchSize'), ctx.deadline);
      const bulkS = (nowMs() - bulkStart) / 1000;
      const bulkWindow = bulkSampler.stop();
      if (bulk.failed > 0) throw new Error(`replay: ${bulk.failed} bulk messages not acknowledged (${bulk.firstError ?? ''})`);
      await sleep(1_000);
      dep.assertAlive();

      // Phase 3: the storm.
      phase = 'storm';
      counters.storm = true;
      const stormAddresses = addressesFor(ctx, C, addresses.length);
      log(`replay: ${C} clients reconnect with their mid (${o.num('reconnectConcurrency')} handshakes in flight)`);
      const sampler = new ResourceSampler(dep.targets).start();
      const stormStart = nowMs();
      const second = await connectWsMany({
        count: C,
        concurrency: o.num('reconnectConcurrency'),
        // Fresh source addresses, as returning clients have: the first wave's sockets
        // linger in TIME_WAIT and made connect() on the same addresses cost the load
        // generator's kernel up to 70 % of a core.
        addresses: stormAddresses,
        deadline: Math.min(ctx.deadline, stormStart + o.num('catchUpTimeoutS') * 1000),
        label: 'reconnect',
        host: dep.host,
        port: dep.port,
        timeoutMs: o.num('connectTimeoutS') * 1000,
        path: (i) => wsPath(privs[i]!, clients[i]!.mid),
        handlers: (i) => ({
          onMessage: (p, b) => clients[i]!.onMessage(p, b),
          onClose: () => {
            if (counters.storm) counters.closedDuringStorm++;
          },
        }),
      });
      allConns.push(...second.conns);
      const connectedS = (nowMs() - stormStart) / 1000;
      const stoppedBy = await waitUntil(() => counters.complete >= C, {
        deadline: Math.min(ctx.deadline, stormStart + o.num('catchUpTimeoutS') * 1000),
        idleMs: 15_000,
        progress: () => counters.unique,
      });
      const window = sampler.stop();
      counters.storm = false;
      const catchUpS = counters.complete >= C ? (counters.lastCompleteAt - stormStart) / 1000 : NaN;
      phase = 'after';
      await sleep(2_000);
      liveStop = true;
      const liveResult = await liveRun;
      await sleep(500);
      dep.assertAlive();
      let liveLost = 0;
      for (let i = 0; i < Math.min(liveResult.issued, liveGot.length); i++) if (liveAcked[i] === 1 && liveGot[i] === 0) liveLost++;
      const lost = C * K - counters.unique;
      await closeAll(second.conns);
      await closeAll(live.conns);
      const logCounts = dep.logCounts();
      await dep.stop();

      const lat = {
        baseline: liveLat.baseline.summary(),
        bulk: liveLat.bulk.summary(),
        storm: liveLat.storm.summary(),
        after: liveLat.after.summary(),
      };
      const jp = window.servers.jetpull;
      const results = {
        connectS: round(first.ms / 1000, 3),
        bulkMessages: bulk.acked,
        bulkS: round(bulkS, 3),
        bulkMessagesPerSec: round(bulk.acked / bulkS, 0),
        bulk: windowJson(bulkWindow),
        reconnectS: round(connectedS, 3),
        reconnectRetries: second.retries,
        reconnectRefused503: second.refused503,
        firstConnectRefused503: first.refused503,
        catchUpS: round(catchUpS, 3),
        clientsCaughtUp: counters.complete,
        expectedDeliveries: C * K,
        deliveries: counters.unique,
        lost,
        duplicated: counters.dups,
        staleReplayed: counters.stale,
        misrouted: counters.misrouted,
        unexpected: counters.unexpected,
        closedDuringStorm: counters.closedDuringStorm,
        stoppedBy,
        peakJetpullCpuPct: jp?.peakCpuPct ?? null,
        peakNatsCpuPct: window.servers.nats?.peakCpuPct ?? null,
        live: {
          clients: L,
          rate: o.num('liveRate'),
          published: liveResult.completed,
          lost: liveLost,
          duplicated: liveDups,
          misrouted: liveMisrouted,
          latencyMs: lat,
        },
        serverLogLines: logCounts,
        ...windowJson(window),
      };
      const table: TableRow[] = [
        ['bulk load', `${fmtInt(bulk.acked)} messages in ${round(bulkS, 2)} s (${fmtInt(results.bulkMessagesPerSec)}/s, protobuf batches)`],
        cpuRow('bulk load', bulkWindow),
        ['reconnect', `${C} handshakes in ${round(connectedS, 2)} s (retries ${second.retries}, 503 busy ${second.refused503})`],
        ['catch-up', `${counters.complete}/${C} clients had all ${K} after ${round(catchUpS, 3)} s`],
        ['lost / dup / stale', `${lost} / ${counters.dups} / ${counters.stale}${counters.misrouted ? ` (misrouted ${counters.misrouted})` : ''}`],
        ['live baseline', fmtLatency(lat.baseline)],
        ['live during bulk load', fmtLatency(lat.bulk)],
        ['live during storm', fmtLatency(lat.storm)],
        ['live after', fmtLatency(lat.after)],
        ['live lost / dup', `${liveLost} / ${liveDups} of ${liveResult.completed}`],
        cpuRow('storm', window),
      ];
      const problems: string[] = [];
      if (lost > 0) problems.push(`replay: ${lost} messages not replayed`);
      if (counters.dups > 0) problems.push(`replay: ${counters.dups} duplicates`);
      if (counters.stale > 0) problems.push(`replay: ${counters.stale} messages at or before the client's mid replayed again`);
      if (counters.misrouted > 0) problems.push(`replay: ${counters.misrouted} misrouted`);
      if (counters.closedDuringStorm > 0) problems.push(`replay: ${counters.closedDuringStorm} connections closed during the storm`);
      if (liveLost > 0) problems.push(`replay: ${liveLost} live messages lost`);
      if (liveResult.failed > 0) problems.push(`replay: ${liveResult.failed} live publishes failed (${liveResult.firstError ?? ''})`);
      if (stoppedBy !== 'done') problems.push(`replay: stopped waiting (${stoppedBy}) before every client caught up`);
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
      return {
        params: o.all(),
        results,
        window,
        windows: [
          { label: 'bulk load', window: bulkWindow },
          { label: 'storm', window },
        ],
        table,
        problems,
        serverLog: dep.logFile,
      };
    } finally {
      liveStop = true;
      for (const p of pools) p.close();
      for (const c of allConns) c?.terminate();
      await dep.stop();
    }
  },
};
