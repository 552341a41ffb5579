import { connectMany } from '../lib/connect.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { ResourceSampler } from '../lib/proc.ts';
import { expectAck, publishBatches, runPaced, textPublishRequest, type BatchItem } from '../lib/publish.ts';
import { HttpConn, HttpPool, headerValue } from '../lib/raw-http.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { benchBody, lastMid, scanText, type MessageSink } from '../lib/scan.ts';
import { addressesFor, deploymentFor, privateToken, type Scenario } from '../lib/scenario.ts';
import { Samples, fmtLatency } from '../lib/stats.ts';
import { fmtInt, log, nowMs, randomHexId, round, sleep, waitUntil } from '../lib/util.ts';

/**
 * C long-poll clients, each on its own private channel, each with its own keep-alive
 * connection (as a browser holds one), polling as the official client does: on 200
 * remember the last mid and poll again at once with mid=<it>; on 304 adopt
 * Last-Message-Id. A paced publisher sends R messages per second to random channels
 * with Message-Expiry, so a message published between two polls is replayed by the
 * next one and nothing may be lost.
 */

class State {
  unique = 0;
  dups = 0;
  misrouted = 0;
  unexpected = 0;
  warm = 0;
  polls = 0;
  ok200 = 0;
  not304 = 0;
  errors = 0;
  firstError: string | undefined;
  multi = 0;
  stopped = false;
  readonly lat = new Samples(4 << 20);
  constructor(readonly got: Uint8Array) {}
}

class PollClient implements MessageSink {
  mid: string | undefined;
  now = 0;
  warm = false;
  running: Promise<void> | undefined;
  constructor(
    private readonly s: State,
    private readonly index: number,
    readonly conn: HttpConn,
    private readonly request: () => string,
  ) {}

  onMsg(seq: number, c: number, t: number): void {
    const s = this.s;
    if (c !== this.index) s.misrouted++;
    if (seq < 0) {
      if (!this.warm) {
        this.warm = true;
        s.warm++;
      }
      return;
    }
    if (seq >= s.got.length) {
      s.unexpected++;
      return;
    }
    if (s.got[seq] === 0) {
      s.got[seq] = 1;
      s.unique++;
      s.lat.add(this.now - t);
    } else {
      s.dups++;
    }
  }

  start(): void {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    const s = this.s;
    while (!s.stopped) {
      let res;
      try {
        s.polls++;
        res = await this.conn.request(this.request(), undefined, 90_000);
      } catch (err) {
        if (s.stopped) return;
        s.errors++;
        s.firstError ??= String(err);
        await sleep(200);
        continue;
      }
      this.now = nowMs();
      if (res.status === 200) {
        s.ok200++;
        const n = scanText(res.body, this, true);
        if (n > 1) s.multi++;
        if (lastMid !== undefined) this.mid = lastMid;
      } else if (res.status === 304) {
        s.not304++;
        const id = headerValue(res.head, 'Last-Message-Id');
        if (id !== undefined && /^\d{26}$/.test(id)) this.mid = id;
      } else {
        s.errors++;
        s.firstError ??= `poll answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
        await sleep(200);
      }
    }
  }
}

export const longpollScenario: Scenario = {
  name: 'longpoll',
  summary: 'C long-poll clients, R publishes/s (with expiry) to random channels: deliveries, latency, 304s, losses',
  options: {
    clients: { type: 'number', default: 5000, help: 'long-poll clients on private channels (C)' },
    rate: { type: 'number', default: 1000, help: 'publishes per second to random channels (R)' },
    durationS: { type: 'number', default: 10, help: 'publishing time (T)' },
    maxInFlight: { type: 'number', default: 64, help: 'unacknowledged publishes at most' },
    expiryS: { type: 'number', default: 60, help: 'Message-Expiry of every message' },
    drainIdleS: { type: 'number', default: 5, help: 'stop waiting for deliveries after this long without progress' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const C = o.num('clients');
    const rate = o.num('rate');
    const durationMs = o.num('durationS') * 1000;
    requireFds(C, o.num('maxInFlight') + 16, 'longpoll');
    const dep = await deploymentFor(ctx);
    const pool = new HttpPool(dep.host, dep.port, o.num('maxInFlight'));
    const batchPool = new HttpPool(dep.host, dep.port, 8);
    let state: State | undefined;
    let clients: PollClient[] = [];
    try {
      if (dep.jetpullPid !== undefined) requireServerFds(dep.jetpullPid, 'jetpull', C, o.num('maxInFlight') + 16);
      const total = Math.floor((rate * durationMs) / 1000);
      const s = new State(new Uint8Array(total));
      state = s;
      const privs = Array.from({ length: C }, () => randomHexId());
      const addresses = addressesFor(ctx, C);
      const hostHeader = `Host: ${dep.host}:${dep.port}\r\n`;
      log(`longpoll: opening ${C} keep-alive connections from ${addresses.join(', ')}`);
      const opened = await connectMany({
        count: C,
        concurrency: o.num('connectConcurrency'),
        addresses,
        deadline: Math.min(ctx.deadline, nowMs() + Math.max(60_000, C * 10)),
        label: 'longpoll',
        open: async (i, localAddress) => {
          const conn = new HttpConn(dep.host, dep.port, localAddress);
          await conn.connect(o.num('connectTimeoutS') * 1000);
          return conn;
        },
      });
      const token = privs.map((p) => privateToken(dep, p));
      clients = opened.conns.map((conn, i) => {
        const client: PollClient = new PollClient(s, i, conn, () =>
          `GET /bitrix/sub/?CHANNEL_ID=${token[i]}${client.mid ? `&mid=${client.mid}` : ''}&revision=19 HTTP/1.1\r\n${hostHeader}\r\n`,
        );
        return client;
      });
      for (const c of clients) c.start();
      log(`longpoll: ${C} connected in ${round(opened.ms / 1000, 2)} s and polling; warming up`);

      // Warm-up: every client gets one message (and so a mid) before the measurement.
      const warmBy = Math.min(ctx.deadline, nowMs() + 90_000);
      await sleep(500);
      while (s.warm < C && nowMs() < warmBy) {
        dep.assertAlive();
        const items: BatchItem[] = [];
        clients.forEach((c, i) => {
          if (!c.warm) items.push({ channel: privs[i]!, body: benchBody(-1, i, nowMs(), o.num('bodyBytes')), expirySec: o.num('expiryS') });
        });
        await publishBatches(batchPool, dep.host, dep.port, items, 100, warmBy);
        await waitUntil(() => s.warm >= C, { deadline: Math.min(warmBy, nowMs() + 3_000), intervalMs: 50 });
      }
      if (s.warm < C) throw new Error(`longpoll: only ${s.warm}/${C} clients got a warm-up message`);
      await sleep(300);
      const base = { polls: s.polls, ok200: s.ok200, not304: s.not304, errors: s.errors, multi: s.multi };

      const acked = new Uint8Array(total);
      log(`longpoll: publishing ${rate}/s for ${durationMs / 1000} s to random channels`);
      const sampler = new ResourceSampler(dep.targets).start();
      const paced = await runPaced({
        rate,
        durationMs,
        maxInFlight: o.num('maxInFlight'),
        deadline: ctx.deadline,
        fire: async (i) => {
          const k = Math.floor(Math.random() * C);
          expectAck(await pool.request(textPublishRequest(dep.host, dep.port, privs[k]!, benchBody(i, k, nowMs(), o.num('bodyBytes')), o.num('expiryS'))));
          acked[i] = 1;
        },
      });
      let ackedCount = 0;
      for (let i = 0; i < total; i++) ackedCount += acked[i]!;
      const stoppedBy = await waitUntil(() => s.unique >= ackedCount, {
        deadline: Math.min(ctx.deadline, nowMs() + 60_000),
        idleMs: o.num('drainIdleS') * 1000,
        progress: () => s.unique,
      });
      const window = sampler.stop();
      dep.assertAlive();
      s.stopped = true;
      for (const c of clients) c.conn.close();
      // Let jetpull see the disconnects before it is stopped (its drain walks what is still open).
      await sleep(1_000);
      let lost = 0;
      let unexpected = s.unexpected;
      for (let i = 0; i < total; i++) {
        if (acked[i] === 1 && s.got[i] === 0) lost++;
        if (acked[i] === 0 && s.got[i] === 1) unexpected++;
      }
      const logCounts = dep.logCounts();
      await dep.stop();
      const results = {
        connectS: round(opened.ms / 1000, 3),
        connectRetries: opened.retries,
        targetRate: rate,
        achievedRate: round(paced.achievedRate, 1),
        acked: ackedCount,
        publishErrors: paced.failed,
        ...(paced.firstError === undefined ? {} : { publishFirstError: paced.firstError }),
        deliveries: s.unique,
        lost,
        duplicated: s.dups,
        misrouted: s.misrouted,
        unexpected,
        latencyMs: s.lat.summary(),
        publishAckMs: paced.ack.summary(),
        polls: s.polls - base.polls,
        responses200: s.ok200 - base.ok200,
        responses304: s.not304 - base.not304,
        responsesWithSeveral: s.multi - base.multi,
        pollErrors: s.errors - base.errors,
        ...(s.firstError === undefined ? {} : { pollFirstError: s.firstError }),
        reconnects: clients.reduce((n, c) => n + c.conn.connects - 1, 0),
        stoppedBy,
        serverLogLines: logCounts,
        ...windowJson(window),
      };
      const table: TableRow[] = [
        ['rate', `${results.achievedRate}/s achieved of ${rate}/s (${fmtInt(ackedCount)} acked, errors ${paced.failed})`],
        ['latency', fmtLatency(results.latencyMs)],
        ['lost / dup / misrouted', `${lost} / ${s.dups} / ${s.misrouted}${unexpected ? ` (unexpected ${unexpected})` : ''}`],
        ['polls', `${fmtInt(results.polls)}: 200 ×${fmtInt(results.responses200)} (${results.responsesWithSeveral} with several messages), 304 ×${results.responses304}, errors ${results.pollErrors}, reconnects ${results.reconnects}`],
        ['publish ack', fmtLatency(results.publishAckMs)],
        ['connect', `${results.connectS} s (retries ${opened.retries})`],
        cpuRow('longpoll', window),
      ];
      const problems: string[] = [];
      if (lost > 0) problems.push(`longpoll: ${lost} messages lost`);
      if (s.dups > 0) problems.push(`longpoll: ${s.dups} duplicates`);
      if (s.misrouted > 0) problems.push(`longpoll: ${s.misrouted} misrouted`);
      if (results.pollErrors > 0) problems.push(`longpoll: ${results.pollErrors} poll errors (${s.firstError ?? ''})`);
      if (paced.failed > 0) problems.push(`longpoll: ${paced.failed} publish errors (${paced.firstError ?? ''})`);
      if (stoppedBy !== 'done') problems.push(`longpoll: stopped waiting (${stoppedBy}) before every delivery arrived`);
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
      return { params: o.all(), results, window, windows: [{ label: 'longpoll', window }], table, problems, serverLog: dep.logFile };
    } finally {
      if (state) state.stopped = true;
      for (const c of clients) c.conn.close();
      pool.close();
      batchPool.close();
      await dep.stop();
    }
  },
};
