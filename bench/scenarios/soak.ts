import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchSetupError, requireFds } from '../lib/env.ts';
import { freePort } from '../lib/deploy.ts';
import { ResourceSampler } from '../lib/proc.ts';
import { HttpPool } from '../lib/raw-http.ts';
import type { ScenarioOutcome } from '../lib/report.ts';
import { deploymentFor, type Scenario } from '../lib/scenario.ts';
import { log, nowMs, sleep } from '../lib/util.ts';
import { CheckedLp, CheckedWs } from '../lib/soak/checked.ts';
import { Churn } from '../lib/soak/churn.ts';
import { hexId, newIdentity, parseRange, type SoakEnv } from '../lib/soak/env.ts';
import { Flooder, Sink } from '../lib/soak/flood.ts';
import { Ledger, Tracker } from '../lib/soak/ledger.ts';
import { SlowFiller, SteadyPublisher } from '../lib/soak/publisher.ts';
import { soakOutcome } from '../lib/soak/report.ts';
import { SoakSampler } from '../lib/soak/sampler.ts';

/**
 * A long run under a mixed load, for what only time shows: memory or descriptors
 * that grow, messages lost or doubled across many reconnects, a process that dies.
 * Connection churn, sleeping clients that resume by mid, steady publishes (private,
 * shared, several receivers), slow readers closed by the outbox bound, a client
 * flooding binary requests, long polls. jetpull is sampled throughout; every message
 * of a checked client is accounted for at the end.
 */
export const soakScenario: Scenario = {
  name: 'soak',
  summary: 'minutes of churn, sleepers, slow readers, a request flood and long polls: memory/fd trend, every resumed message once and in order',
  options: {
    minutes: { type: 'number', default: 30, help: 'duration of the load' },
    warmupMin: { type: 'number', default: 5, help: 'minutes left out of the trend (at most a third of the run)' },
    windowMin: { type: 'number', default: 5, help: 'averaging window for the first/last comparison (at most a third of the run)' },
    sampleS: { type: 'number', default: 10, help: 'seconds between samples of jetpull (RSS, heap, descriptors)' },
    sleepers: { type: 'number', default: 60, help: 'checked WebSocket clients that leave and come back with their mid (half binaryMode)' },
    longpoll: { type: 'number', default: 20, help: 'checked long-poll clients that sleep now and then (half binaryMode)' },
    slowReaders: { type: 'number', default: 2, help: 'checked WebSocket clients that stop reading while being filled' },
    churn: { type: 'number', default: 120, help: 'WebSocket churn slots (a new user per connection)' },
    churnLp: { type: 'number', default: 20, help: 'long-poll churn slots' },
    flood: { type: 'boolean', default: true, help: 'one binaryMode client sending requests as fast as the server reads them, to 2 sinks' },
    floodPerRequest: { type: 'number', default: 2, help: 'messages per flood publish request (each to both sinks)' },
    floodWindow: { type: 'number', default: 400, help: 'flood requests sent ahead of the last answered channelStats' },
    rate: { type: 'number', default: 40, help: 'steady publishes per second' },
    sharedChannels: { type: 'number', default: 4, help: 'shared channels (each client subscribes to one)' },
    awakeS: { type: 'string', default: '10-60', help: 'how long a sleeper or long poll stays, seconds (range)' },
    sleepS: { type: 'string', default: '5-60', help: 'how long a sleeper or long poll stays away, seconds (range)' },
    churnStayS: { type: 'string', default: '0.5-30', help: 'how long a churn connection stays, seconds (range)' },
    slowReadS: { type: 'string', default: '20-40', help: 'how long a slow reader reads between pauses, seconds (range)' },
    slowPauseS: { type: 'string', default: '30-50', help: 'how long a slow reader stops reading, seconds (range)' },
    slowBodyBytes: { type: 'number', default: 16384, help: 'body size of the publishes that fill a paused reader' },
    slowBurstMib: { type: 'number', default: 16, help: 'MiB published to a paused reader at most per pause' },
    expiryS: { type: 'number', default: 600, help: 'Message-Expiry of every publish' },
    messageTtlS: { type: 'number', default: 600, help: 'PUSH_STORAGE__MESSAGE_TTL_SEC of the jetpull child (the stream keeps this much, so it reaches a steady size)' },
    afterS: { type: 'number', default: 10, help: 'seconds jetpull is sampled on after every client left (the "after" figures are the last sample)' },
    settleS: { type: 'number', default: 120, help: 'longest wait after the load for every checked client to catch up' },
    maxRetainedMib: { type: 'number', default: 8, help: 'heap plus external memory that jetpull holds after a full garbage collection once every client left, beyond what it held before the load, reported as a problem' },
    keepHeapSnapshots: { type: 'boolean', default: false, help: 'keep the heap snapshots taken before and after the load (each forces the full collection the figures above are read after)' },
    maxGrowthPct: { type: 'number', default: 10, help: 'RSS or heap growth (last window against the one after the warm-up) reported as a problem (runs of 10 min or more)' },
    timeoutS: { type: 'number', default: 7200, help: 'hard limit for the whole run; the run is aborted after it' },
    out: { type: 'string', default: 'bench/results/soak.json', help: 'file the JSON line is written to as well ("" for none)' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const loadMs = o.num('minutes') * 60_000;
    const settleMs = o.num('settleS') * 1000;
    if (nowMs() + loadMs + settleMs + 60_000 > ctx.deadline) throw new BenchSetupError(`--minutes ${o.num('minutes')} and --settle-s do not fit in --timeout-s ${o.num('timeoutS')}`);
    const timings = { awake: parseRange(o.str('awakeS'), 'awake-s'), away: parseRange(o.str('sleepS'), 'sleep-s') };
    const slowTimings = { awake: parseRange(o.str('slowReadS'), 'slow-read-s'), away: parseRange(o.str('slowPauseS'), 'slow-pause-s') };
    const churnStay = parseRange(o.str('churnStayS'), 'churn-stay-s');
    const counts = { sleepers: o.num('sleepers'), longpoll: o.num('longpoll'), slow: o.num('slowReaders'), churn: o.num('churn'), churnLp: o.num('churnLp') };
    requireFds(counts.sleepers + counts.longpoll + counts.slow + counts.churn + counts.churnLp + 3, 64, 'soak');
    if (o.optStr('url') !== undefined) throw new BenchSetupError('soak samples the jetpull process it starts; --url is not supported');

    const adminPort = await freePort();
    const keepSnapshots = o.bool('keepHeapSnapshots');
    const snapDir = mkdtempSync(join(tmpdir(), 'jetpull-soak-heap-'));
    const dep = await deploymentFor(ctx, { PUSH_ADMIN__PORT: String(adminPort), PUSH_STORAGE__MESSAGE_TTL_SEC: String(o.num('messageTtlS')) }, [
      '--heapsnapshot-signal=SIGUSR2',
      `--diagnostic-dir=${snapDir}`,
    ]);
    const env: SoakEnv = { host: dep.host, port: dep.port, key: dep.key, ending: false, finished: false, refusals: {} };
    const pools: HttpPool[] = [];
    let loadStopped = false;
    const tasks: Array<Promise<void>> = [];
    try {
      const jetpullPid = dep.jetpullPid!;
      const natsPid = dep.targets.find((t) => t.name === 'nats')?.pid;
      // Before the load: what jetpull holds on its own.
      await sleep(2_000);
      const started = nowMs();
      const sampler = new SoakSampler(jetpullPid, natsPid, adminPort, started);
      const beforeGc = await sampler.sampleAfterFullGc(snapDir, keepSnapshots);
      const before = beforeGc.sample;
      // The load starts a second from now; the sample before it moves to negative time.
      const t0 = nowMs() + 1_000;
      sampler.t0 = t0;
      before.t = Math.round(started + before.t * 1000 - t0) / 1000;

      const ledger = new Ledger();
      const shared = Array.from({ length: Math.max(1, o.num('sharedChannels')) }, () => hexId());
      const sharedIdx = shared.map((s) => ledger.channel(s));
      const tracked = (name: string, i: number): { id: ReturnType<typeof newIdentity>; t: Tracker } => {
        const id = newIdentity(dep.key, shared[i % shared.length]!);
        return { id, t: new Tracker(`${name} ${i}`, [ledger.channel(id.priv), ledger.channel(id.shared)]) };
      };
      const publishPool = new HttpPool(dep.host, dep.port, 32);
      const slowPool = new HttpPool(dep.host, dep.port, Math.max(1, counts.slow));
      pools.push(publishPool, slowPool);
      const filler = new SlowFiller(slowPool, dep.host, dep.port, ledger, o.num('slowBodyBytes'), o.num('slowBurstMib') * 1024 * 1024, o.num('expiryS'));
      const sleepers = Array.from({ length: counts.sleepers }, (_, i) => {
        const { id, t } = tracked('sleeper', i);
        return new CheckedWs(env, t, id, i % 2 === 1, timings);
      });
      const lps = Array.from({ length: counts.longpoll }, (_, i) => {
        const { id, t } = tracked('longpoll', i);
        return new CheckedLp(env, t, id, i % 2 === 1, timings);
      });
      const slow = Array.from({ length: counts.slow }, (_, i) => {
        const { id, t } = tracked('slow reader', i);
        return new CheckedWs(env, t, id, false, slowTimings, filler.burst);
      });
      const trackers = [...sleepers, ...lps, ...slow].map((c) => c.tracker);
      const churn = new Churn(env, shared, churnStay);
      const sinks = o.bool('flood') ? [new Sink(env, false), new Sink(env, true)] : [];
      const flooder = o.bool('flood') ? new Flooder(env, sinks, o.num('floodPerRequest'), o.num('floodWindow'), o.num('expiryS')) : undefined;
      const privIdx = (c: { tracker: Tracker }): number => c.tracker.chans[0]!;
      const steady = new SteadyPublisher(
        publishPool,
        dep.host,
        dep.port,
        ledger,
        { privates: [...sleepers, ...lps, ...slow].map(privIdx), multiPrivates: [...sleepers, ...lps].map(privIdx), shared: sharedIdx },
        churn,
        { rate: o.num('rate'), bodyBytes: o.num('bodyBytes'), expirySec: o.num('expiryS'), sharedShare: 0.1, multiShare: 0.15, churnShare: 0.15 },
      );

      log(`soak: ${o.num('minutes')} min; ${counts.sleepers} sleepers, ${counts.longpoll} long polls, ${counts.slow} slow readers, churn ${counts.churn} WS + ${counts.churnLp} LP, flood ${o.bool('flood')}, ${o.num('rate')} publishes/s`);
      const stopped = (): boolean => loadStopped;
      const lastLog = { at: 0 };
      sampler.start(o.num('sampleS') * 1000, (s) => {
        if (nowMs() - lastLog.at < 60_000) return;
        lastLog.at = nowMs();
        const c = ledger.counts();
        log(`soak t=${Math.round(s.t)} s: rss ${s.rssMiB} MiB, heap ${s.heapUsedMiB} MiB, fds ${s.fds}, connections ${s.connections}, nats rss ${s.natsRssMiB} MiB; publishes ${c.acked} acked, ${c.failed} failed; churn ${churn.wsConnects} WS + ${churn.lpPolls} polls; flood ${flooder?.requests ?? 0} requests`);
      });
      const resources = new ResourceSampler(dep.targets, 1_000).start();
      const stagger = (run: () => Promise<void>): Promise<void> => sleep(Math.random() * 5_000).then(run);
      for (const c of [...sleepers, ...lps, ...slow]) tasks.push(stagger(() => c.run()));
      for (const s of sinks) tasks.push(s.run());
      const loadTasks: Array<Promise<void>> = [];
      for (let i = 0; i < counts.churn; i++) loadTasks.push(stagger(() => churn.wsSlot(stopped)));
      for (let i = 0; i < counts.churnLp; i++) loadTasks.push(stagger(() => churn.lpSlot(stopped)));
      if (flooder !== undefined) loadTasks.push(sleep(3_000).then(() => flooder.run(stopped)));
      loadTasks.push(steady.run(loadMs, ctx.deadline, stopped));

      // The load, until its time is up or a process dies.
      let exited: string | undefined;
      while (nowMs() < t0 + loadMs && exited === undefined) {
        await sleep(1_000);
        try {
          dep.assertAlive();
        } catch (err) {
          exited = (err as Error).message;
        }
      }
      loadStopped = true;
      log('soak: load over; waiting for every checked client to catch up');
      await Promise.all(loadTasks);
      const floodDrained = flooder === undefined ? true : await flooder.drain(30_000);
      env.ending = true;
      const settleStart = nowMs();
      const behind = (): number =>
        trackers.reduce((n, t) => n + ledger.missing(t).lost.length, 0) + (flooder === undefined ? 0 : sinks.reduce((n, s) => n + flooder.missingAt(s).lost, 0));
      while (exited === undefined && nowMs() - settleStart < settleMs && behind() > 0) await sleep(1_000);
      await sleep(2_000);
      const settleS = (nowMs() - settleStart) / 1000;
      env.finished = true;
      flooder?.close();
      await Promise.all(tasks);
      const loadWindow = resources.stop();
      for (const p of pools) p.close();
      // After the load: every client is gone; what jetpull still holds should be what it held before.
      await sleep(o.num('afterS') * 1000);
      await sampler.stop();
      const afterGc = await sampler.sampleAfterFullGc(snapDir, keepSnapshots);
      const after = afterGc.sample;
      const logCounts = dep.logCounts();
      if (exited === undefined) {
        try {
          dep.assertAlive();
        } catch (err) {
          exited = (err as Error).message;
        }
      }
      await dep.stop();
      return soakOutcome({
        params: o.all(),
        o,
        loadMs,
        before,
        after,
        sampler,
        ledger,
        trackers,
        sleepers,
        lps,
        slow,
        churn,
        sinks,
        flooder,
        floodDrained,
        steady,
        filler,
        env,
        settleS,
        exited,
        logCounts,
        logFile: dep.logFile,
        loadWindow,
        snapshots: [beforeGc.snapshot, afterGc.snapshot].filter((f): f is string => f !== undefined),
      });
    } finally {
      loadStopped = true;
      env.ending = true;
      env.finished = true;
      for (const p of pools) p.close();
      await dep.stop();
      if (!keepSnapshots) rmSync(snapDir, { recursive: true, force: true });
    }
  },
};
