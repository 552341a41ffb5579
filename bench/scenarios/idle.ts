import { closeAll, connectWsMany } from '../lib/connect.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { processTree, procRssKiB, ResourceSampler } from '../lib/proc.ts';
import { expectAck, textPublishRequest } from '../lib/publish.ts';
import { HttpPool } from '../lib/raw-http.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { benchBody, scanBinary, scanText, type MessageSink } from '../lib/scan.ts';
import { Samples, fmtLatency } from '../lib/stats.ts';
import { addressesFor, deploymentFor, privateToken, type Scenario } from '../lib/scenario.ts';
import { log, nowMs, randomHexId, round, sleep, waitUntil } from '../lib/util.ts';

/** Average RSS (KiB) of a process and its descendants over `n` samples `gapMs` apart. */
async function steadyRssKiB(pid: number, exclude: ReadonlySet<number>, n = 5, gapMs = 200): Promise<number> {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    let v = 0;
    for (const p of processTree(pid, exclude)) v += procRssKiB(p) ?? 0;
    if (v > 0) {
      sum += v;
      count++;
    }
    await sleep(gapMs);
  }
  return count > 0 ? sum / count : NaN;
}

/**
 * C idle WebSocket connections, subscribed as a portal's browser is
 * (CHANNEL_ID=<priv>.<sig>/<shared>.<sig>): RSS per connection of jetpull and of the
 * whole deployment, then one broadcast to check every connection is alive.
 */
export const idleScenario: Scenario = {
  name: 'idle',
  summary: 'C idle WebSocket connections: RSS per connection of jetpull and of jetpull + nats-server',
  options: {
    clients: { type: 'number', default: 20000, help: 'idle WebSocket connections (C)' },
    settleS: { type: 'number', default: 5, help: 'idle time after connecting, before RSS is read' },
    steadyS: { type: 'number', default: 45, help: 'idle time after connecting before RSS is read again: the connect burst\'s garbage is returned by then (0: not read again)' },
    binaryMode: { type: 'boolean', default: false, help: 'connect with binaryMode=true' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const clients = o.num('clients');
    requireFds(clients, 8, 'idle');
    const dep = await deploymentFor(ctx);
    try {
      if (dep.jetpullPid !== undefined) requireServerFds(dep.jetpullPid, 'jetpull', clients, 8);
      const jp = dep.targets.find((t) => t.name === 'jetpull');
      const nats = dep.targets.find((t) => t.name === 'nats');
      const binary = o.bool('binaryMode');
      const shared = randomHexId();
      const sharedToken = privateToken(dep, shared);
      const pool = new HttpPool(dep.host, dep.port, 2);
      let received = 0;
      let receivedAt = 0;
      const lat = new Samples();
      const sink: MessageSink & { now: number } = {
        now: 0,
        onMsg(seq, _c, t) {
          if (seq >= 0) {
            received++;
            receivedAt = this.now;
            lat.add(this.now - t);
          }
        },
      };
      const onMessage = (p: Buffer, b: boolean): void => {
        sink.now = nowMs();
        if (b || binary) scanBinary(p, sink);
        else scanText(p, sink);
      };
      const path = (priv: string): string =>
        `/bitrix/subws/?CHANNEL_ID=${privateToken(dep, priv)}/${sharedToken}${binary ? '&binaryMode=true' : ''}&revision=19`;
      const addresses = addressesFor(ctx, clients);

      // Warm the server's code paths (a few connections and a publish), then read the baseline.
      const warm = await connectWsMany({
        count: 20,
        concurrency: 20,
        addresses,
        deadline: ctx.deadline,
        label: 'idle warm-up',
        host: dep.host,
        port: dep.port,
        timeoutMs: 10_000,
        path: () => path(randomHexId()),
        handlers: () => ({ onMessage: () => undefined }),
      });
      expectAck(await pool.request(textPublishRequest(dep.host, dep.port, shared, benchBody(-1, -1, nowMs(), o.num('bodyBytes')), 0)));
      await sleep(500);
      await closeAll(warm.conns);
      await sleep(2_000);
      const before: Record<string, number> = {};
      const othersOf = (pid: number): Set<number> => new Set(dep.targets.map((t) => t.pid).filter((p) => p !== pid));
      for (const t of dep.targets) before[t.name] = await steadyRssKiB(t.pid, othersOf(t.pid));
      const loadgenBefore = process.memoryUsage.rss() / 1024;

      log(`idle: connecting ${clients} WebSocket clients from ${addresses.join(', ')}`);
      const sampler = new ResourceSampler(dep.targets).start();
      const { conns, ms: connectMs, retries, refused503 } = await connectWsMany({
        count: clients,
        concurrency: o.num('connectConcurrency'),
        addresses,
        deadline: Math.min(ctx.deadline, nowMs() + Math.max(120_000, clients * 10)),
        label: 'idle',
        host: dep.host,
        port: dep.port,
        timeoutMs: o.num('connectTimeoutS') * 1000,
        path: () => path(randomHexId()),
        handlers: () => ({ onMessage }),
      });
      log(`idle: ${clients} connected in ${round(connectMs / 1000, 2)} s; idling ${o.num('settleS')} s`);
      await sleep(o.num('settleS') * 1000);
      dep.assertAlive();
      const after: Record<string, number> = {};
      for (const t of dep.targets) after[t.name] = await steadyRssKiB(t.pid, othersOf(t.pid));
      const loadgenAfter = process.memoryUsage.rss() / 1024;
      // Idle long enough, V8 gives back what the connect burst left: the steady cost of an idle connection.
      const steadyS = o.num('steadyS');
      const steady: Record<string, number> = {};
      if (steadyS > o.num('settleS')) {
        await sleep((steadyS - o.num('settleS')) * 1000);
        dep.assertAlive();
        for (const t of dep.targets) steady[t.name] = await steadyRssKiB(t.pid, othersOf(t.pid));
      }
      const window = sampler.stop();
      const open = conns.filter((c) => c.isOpen).length;

      // Liveness: one broadcast on the shared channel must reach every connection.
      const t0 = nowMs();
      expectAck(await pool.request(textPublishRequest(dep.host, dep.port, shared, benchBody(0, -1, t0, o.num('bodyBytes')), 0)));
      const liveStatus = await waitUntil(() => received >= clients, {
        deadline: Math.min(ctx.deadline, nowMs() + 60_000),
        idleMs: 10_000,
        progress: () => received,
      });
      const broadcastMs = receivedAt - t0;
      pool.close();
      await closeAll(conns);
      const logCounts = dep.logCounts();
      await dep.stop();

      const perConn = (name: string, at: Record<string, number> = after): number =>
        before[name] !== undefined && at[name] !== undefined ? round((at[name]! - before[name]!) / clients, 2) : NaN;
      const jpPer = jp ? perConn(jp.name) : NaN;
      const natsPer = nats ? perConn(nats.name) : NaN;
      const jpSteady = jp ? perConn(jp.name, steady) : NaN;
      const natsSteady = nats ? perConn(nats.name, steady) : NaN;
      const deploymentPer = round((Number.isFinite(jpPer) ? jpPer : 0) + (Number.isFinite(natsPer) ? natsPer : 0), 2);
      const results = {
        connections: clients,
        openAfterSettle: open,
        connectS: round(connectMs / 1000, 3),
        connectsPerSec: round(clients / (connectMs / 1000), 0),
        connectRetries: retries,
        connectRefused503: refused503,
        jetpullRssBeforeMiB: jp ? round(before[jp.name]! / 1024, 1) : null,
        jetpullRssAfterMiB: jp ? round(after[jp.name]! / 1024, 1) : null,
        natsRssBeforeMiB: nats ? round(before[nats.name]! / 1024, 1) : null,
        natsRssAfterMiB: nats ? round(after[nats.name]! / 1024, 1) : null,
        jetpullKiBPerConnection: jpPer,
        natsKiBPerConnection: natsPer,
        steadyAfterS: steadyS > o.num('settleS') ? steadyS : null,
        jetpullRssSteadyMiB: jp && steady[jp.name] !== undefined ? round(steady[jp.name]! / 1024, 1) : null,
        jetpullKiBPerConnectionSteady: Number.isFinite(jpSteady) ? jpSteady : null,
        natsKiBPerConnectionSteady: Number.isFinite(natsSteady) ? natsSteady : null,
        deploymentKiBPerConnection: deploymentPer,
        loadgenKiBPerConnection: round((loadgenAfter - loadgenBefore) / clients, 2),
        broadcastDelivered: received,
        broadcastMs: round(broadcastMs, 1),
        broadcastLatencyMs: lat.summary(),
        broadcastStoppedBy: liveStatus,
        serverLogLines: logCounts,
        ...windowJson(window),
      };
      const table: TableRow[] = [
        ['connections', `${clients} (${open} open after ${o.num('settleS')} s idle)`],
        ['connect', `${round(connectMs / 1000, 2)} s (${results.connectsPerSec}/s, retries ${retries}, 503 busy ${refused503})`],
        ['jetpull RSS', `${results.jetpullRssBeforeMiB} → ${results.jetpullRssAfterMiB} MiB: ${jpPer} KiB per connection`],
        ['nats-server RSS', `${results.natsRssBeforeMiB} → ${results.natsRssAfterMiB} MiB: ${natsPer} KiB per connection`],
        ['steady', Number.isFinite(jpSteady) ? `after ${steadyS} s idle: jetpull ${results.jetpullRssSteadyMiB} MiB, ${jpSteady} KiB per connection; nats-server ${natsSteady} KiB` : 'not read (--steady-s)'],
        ['deployment', `${deploymentPer} KiB per connection (jetpull + nats-server)`],
        ['load generator', `${results.loadgenKiBPerConnection} KiB per connection`],
        ['broadcast check', `${received}/${clients} got it; last after ${results.broadcastMs} ms (${fmtLatency(results.broadcastLatencyMs)})`],
        cpuRow('connect+idle', window),
      ];
      const problems: string[] = [];
      if (open < clients) problems.push(`idle: ${clients - open} connections closed while idle`);
      if (received < clients) problems.push(`idle: broadcast reached ${received}/${clients} connections`);
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
      return { params: o.all(), results, window, windows: [{ label: 'idle', window }], table, problems, serverLog: dep.logFile };
    } finally {
      await dep.stop();
    }
  },
};
