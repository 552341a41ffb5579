import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import type { JetStreamAppender } from '../../src/nats/jetstream-appender.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { closeAll, connectWsMany } from '../lib/connect.ts';
import type { Deployment } from '../lib/deploy.ts';
import { requireFds } from '../lib/env.ts';
import { procCpuMs, ResourceSampler } from '../lib/proc.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import { addressesFor, deploymentFor, privateToken, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { fmtInt, log, nowMs, randomHexId, round, sleep, waitUntil } from '../lib/util.ts';

/**
 * Gateway CPU per live message, by counting: C WebSocket clients on their own
 * private channels; messages are written straight to the stream (jetpull's appender
 * in this process, so jetpull's publisher does no work) at R/s for T s, either to the
 * clients' channels (delivered) or to channels nobody holds (not held). jetpull's and
 * nats-server's CPU come from /proc; an idle phase of the same length gives the
 * baseline that is taken off. Once per live-subscription mode:
 * `channel` (a subscription per channel: messages for channels not held never reach
 * the gateway) and `all` (one wildcard: they arrive and are dropped), which is the
 * gateway's side of subject sharding with filtering in the gateway.
 */

interface Phase {
  mode: string;
  phase: 'idle' | 'delivered' | 'not held';
  seconds: number;
  written: number;
  delivered: number;
  frames: number;
  jetpullCpuMs: number;
  natsCpuMs: number;
  /** CPU per written message above the idle baseline, microseconds. */
  jetpullUsPerMessage: number;
  natsUsPerMessage: number;
}

const logger = createRootLogger({ level: 'warn', processUniqueId: 'bench', version: 'bench' });
const MARK = Buffer.from('#!NGINXNMS!#');

/** Writes `rate` messages per second to `keyOf(i)` for `ms`, at most 4,096 in flight. */
async function paced(appender: JetStreamAppender, rate: number, ms: number, keyOf: (i: number) => string, body: Uint8Array): Promise<{ written: number; failed: number }> {
  let issued = 0;
  let written = 0;
  let failed = 0;
  let inFlight = 0;
  const t0 = nowMs();
  const meta = { expirySec: 60 };
  while (nowMs() - t0 < ms) {
    const due = Math.floor(((nowMs() - t0) / 1000) * rate);
    while (issued < due && inFlight < 4096) {
      const i = issued++;
      inFlight++;
      appender.append(keyOf(i), body, `${randomHexId()}`, meta, 10_000).then(
        () => {
          written++;
          inFlight--;
        },
        () => {
          failed++;
          inFlight--;
        },
      );
    }
    await sleep(5);
  }
  while (inFlight > 0) await sleep(5);
  return { written, failed };
}

async function runMode(ctx: ScenarioContext, mode: string, phases: Phase[], problems: string[]): Promise<void> {
  const o = ctx.opts;
  const [C, rate, ms] = [o.num('clients'), o.num('rate'), o.num('durationS') * 1000];
  const dep: Deployment = await deploymentFor(ctx, { PUSH_GATEWAY__LIVE_SUBSCRIPTION: mode });
  const conns: RawWs[] = [];
  let access: NatsAccess | undefined;
  let appender: JetStreamAppender | undefined;
  try {
    const ids = Array.from({ length: C }, () => randomHexId());
    let delivered = 0;
    let frames = 0;
    const { conns: opened } = await connectWsMany({
      count: C,
      concurrency: o.num('connectConcurrency'),
      addresses: addressesFor(ctx, C),
      deadline: ctx.deadline,
      label: `${mode} connect`,
      host: dep.host,
      port: dep.port,
      timeoutMs: o.num('connectTimeoutS') * 1000,
      path: (i) => `/bitrix/subws/?CHANNEL_ID=${privateToken(dep, ids[i]!)}&revision=19`,
      handlers: () => ({
        onMessage(payload) {
          frames++;
          for (let at = payload.indexOf(MARK); at !== -1; at = payload.indexOf(MARK, at + MARK.length)) delivered++;
        },
      }),
    });
    conns.push(...opened);
    const url = dep.natsUrl!;
    access = await NatsAccess.open(parseConfig({ nats: { url } }).nats, url, logger);
    appender = access.appender();
    const body = Buffer.from(JSON.stringify({ module_id: 'im', command: 'message', params: { text: 'x'.repeat(140) } }));
    // Warm-up: every channel once, so first-message paths are not measured.
    await paced(appender, 5_000, Math.ceil((C / 5_000) * 1000) + 200, (i) => `priv.${ids[i % C]}`, body);
    await waitUntil(() => delivered >= C, { deadline: nowMs() + 10_000 });
    await sleep(1_000);
    const measure = async (phase: Phase['phase'], work: () => Promise<{ written: number; failed: number }>): Promise<Phase> => {
      const d0 = delivered;
      const f0 = frames;
      const j0 = procCpuMs(dep.jetpullPid!) ?? 0;
      const n0 = procCpuMs(dep.targets[1]!.pid) ?? 0;
      const t0 = nowMs();
      const w = await work();
      // Deliveries of the last writes, then the same quiet tail for every phase.
      await waitUntil(() => delivered - d0 >= (phase === 'delivered' ? w.written : 0), { deadline: nowMs() + 5_000 });
      await sleep(500);
      if (w.failed > 0) problems.push(`${mode} ${phase}: ${w.failed} writes failed`);
      return {
        mode,
        phase,
        seconds: round((nowMs() - t0) / 1000, 2),
        written: w.written,
        delivered: delivered - d0,
        frames: frames - f0,
        jetpullCpuMs: Math.round((procCpuMs(dep.jetpullPid!) ?? 0) - j0),
        natsCpuMs: Math.round((procCpuMs(dep.targets[1]!.pid) ?? 0) - n0),
        jetpullUsPerMessage: NaN,
        natsUsPerMessage: NaN,
      };
    };
    const idle = await measure('idle', async () => {
      await sleep(ms);
      return { written: 0, failed: 0 };
    });
    const held = await measure('delivered', () => paced(appender!, rate, ms, (i) => `priv.${ids[Math.floor(Math.random() * C)]}`, body));
    const notHeld = await measure('not held', () => paced(appender!, rate, ms, () => `priv.${randomHexId()}`, body));
    for (const p of [held, notHeld]) {
      const scale = p.seconds / idle.seconds;
      p.jetpullUsPerMessage = round(((p.jetpullCpuMs - idle.jetpullCpuMs * scale) * 1000) / p.written, 2);
      p.natsUsPerMessage = round(((p.natsCpuMs - idle.natsCpuMs * scale) * 1000) / p.written, 2);
    }
    if (held.delivered !== held.written) problems.push(`${mode}: ${held.written} written to held channels, ${held.delivered} delivered`);
    for (const p of [idle, held, notHeld]) {
      phases.push(p);
      log(`${mode} ${p.phase}: ${fmtInt(p.written)} written, ${fmtInt(p.delivered)} delivered in ${fmtInt(p.frames)} frames, ${p.seconds} s; jetpull ${p.jetpullCpuMs} ms CPU, nats ${p.natsCpuMs} ms; per message above idle: jetpull ${p.jetpullUsPerMessage} us, nats ${p.natsUsPerMessage} us`);
    }
  } finally {
    appender?.close();
    await access?.close();
    await closeAll(conns);
    await dep.stop();
  }
}

export const deliveryCostScenario: Scenario = {
  name: 'delivery-cost',
  summary: 'gateway CPU per delivered message and per message for a channel it does not hold, per live-subscription mode',
  options: {
    clients: { type: 'number', default: 2000, help: 'WebSocket clients, one private channel each (C)' },
    rate: { type: 'number', default: 4000, help: 'messages written per second (R)' },
    durationS: { type: 'number', default: 10, help: 'seconds per phase (T)' },
    modes: { type: 'string', default: 'channel,all', help: 'gateway.liveSubscription modes to run' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    requireFds(o.num('clients'), 16, 'delivery-cost');
    const phases: Phase[] = [];
    const problems: string[] = [];
    const sampler = new ResourceSampler([]).start();
    for (const mode of o.str('modes').split(',')) await runMode(ctx, mode, phases, problems);
    const window = { ...sampler.stop(), otherPct: NaN };
    const table: TableRow[] = phases
      .filter((p) => p.phase !== 'idle')
      .map((p) => [
        `${p.mode}: ${p.phase}`,
        `${fmtInt(p.written)} msgs (${fmtInt(p.delivered)} delivered, ${fmtInt(p.frames)} frames); per message: jetpull ${p.jetpullUsPerMessage} us, nats-server ${p.natsUsPerMessage} us CPU`,
      ]);
    return { params: o.all(), results: { phases }, window, windows: [{ label: 'delivery-cost', window }], table, problems };
  },
};
