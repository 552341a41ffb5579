import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { registerCleanup } from '../lib/cleanup.ts';
import type { OptSpecs } from '../lib/cli.ts';
import { REPO_ROOT, stopChild } from '../lib/deploy.ts';
import { requireFds, requireServerFds } from '../lib/env.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { expectAck } from '../lib/publish.ts';
import { addressesFor, parseServerEnv, type Scenario, type ScenarioContext } from '../lib/scenario.ts';
import { fmtLatency } from '../lib/stats.ts';
import { fmtInt, log, nowMs } from '../lib/util.ts';
import { runFanoutLoad, type FanoutLoadOptions, type FanoutLoadResult } from './fanout-load.ts';

/** Options of the fan-out load (ceiling, fanout and binary share them). */
export const FANOUT_OPTIONS: OptSpecs = {
  clients: { type: 'number', default: 5000, help: 'WebSocket subscribers (C)' },
  messages: { type: 'number', default: 2000, help: 'messages published (M)' },
  publishConcurrency: { type: 'number', default: 32, help: 'publishes in flight (keep-alive connections)' },
  latencySampleEvery: { type: 'number', default: 10, help: 'every n-th client records latency (all clients count)' },
  drainIdleS: { type: 'number', default: 10, help: 'stop waiting for deliveries after this long without progress' },
};

/** The bounds of a coalesced frame jetpull runs with (its defaults unless --server-env sets them): the ceiling uses the same. */
export function coalesceBounds(ctx: ScenarioContext): { maxBytes: number; maxMessages: number } {
  const env = parseServerEnv(ctx.opts.optStr('serverEnv'));
  return {
    maxBytes: Number(env.PUSH_GATEWAY__COALESCE_MAX_BYTES ?? 65_536),
    maxMessages: Number(env.PUSH_GATEWAY__COALESCE_MAX_MESSAGES ?? 256),
  };
}

/** Starts bench/ceiling-server.ts as a child process; resolves with its port and a stop function. */
export async function startCeilingServer(bounds: { maxBytes: number; maxMessages: number }): Promise<{ port: number; pid: number; assertAlive: () => void; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/ceiling-server.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, CEILING_MAX_BYTES: String(bounds.maxBytes), CEILING_MAX_MESSAGES: String(bounds.maxMessages) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const unregister = registerCleanup(
    'ceiling server',
    () => stopChild(child, 3_000),
    () => {
      child.kill('SIGKILL');
    },
  );
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = `ceiling server exited (code ${code}, signal ${signal})`;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ceiling server did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`ceiling server exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  return {
    port,
    pid: child.pid!,
    assertAlive() {
      if (exitInfo !== undefined) throw new Error(exitInfo);
    },
    async stop() {
      child.stdin?.end();
      await stopChild(child, 3_000);
      unregister();
    },
  };
}

/** The fan-out load against the ceiling server. */
export async function measureCeiling(ctx: ScenarioContext): Promise<FanoutLoadResult> {
  const o = ctx.opts;
  const clients = o.num('clients');
  requireFds(clients, o.num('publishConcurrency'), 'ceiling');
  const server = await startCeilingServer(coalesceBounds(ctx));
  try {
    requireServerFds(server.pid, 'ceiling server', clients, o.num('publishConcurrency'));
    log(`ceiling server pid ${server.pid} on 127.0.0.1:${server.port}`);
    return await runFanoutLoad(
      {
        host: '127.0.0.1',
        port: server.port,
        wsPath: () => '/bitrix/subws/?CHANNEL_ID=ceiling',
        publishRequest: (body) =>
          `POST /bitrix/pub/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        expectAck,
        targets: [{ name: 'ceilingServer', pid: server.pid }],
        assertAlive: () => server.assertAlive(),
      },
      fanoutLoadOptions(ctx, 'ceiling', false, 200),
    );
  } finally {
    await server.stop();
  }
}

/** The JSON form of a fan-out result (window folded into cpu/rss). */
export function fanoutJson(r: FanoutLoadResult): Record<string, unknown> {
  const { window, ...rest } = r;
  return { ...rest, ...windowJson(window) };
}

export function fanoutRows(label: string, r: FanoutLoadResult): TableRow[] {
  return [
    [`${label} deliveries/s`, `${fmtInt(r.deliveriesPerSec)} (${fmtInt(r.deliveries)}/${fmtInt(r.expectedDeliveries)} in ${r.durationS} s)`],
    [`${label} latency`, fmtLatency(r.latencyMs)],
    [`${label} lost / dup`, `${r.lost} / ${r.duplicated}${r.unexpected ? ` (unexpected ${r.unexpected})` : ''}${r.closedDuringRun ? ` (closed ${r.closedDuringRun})` : ''}`],
    [`${label} frames`, `${fmtInt(r.framesReceived)} (${r.messagesPerFrame} msgs/frame, ${r.bytesReceivedMiB} MiB)`],
    [`${label} publish`, `${r.publishedAcked} acked in ${r.publishS} s (${fmtInt(r.publishRatePerSec)}/s), errors ${r.publishErrors}, ack p99 ${r.publishAckMs.p99} ms`],
    [`${label} connect`, `${r.connectS} s (retries ${r.connectRetries}, 503 busy ${r.connectRefused503})`],
    cpuRow(label, r.window),
  ];
}

export function fanoutProblems(label: string, r: FanoutLoadResult): string[] {
  const p: string[] = [];
  if (r.lost > 0) p.push(`${label}: ${r.lost} deliveries lost`);
  if (r.duplicated > 0) p.push(`${label}: ${r.duplicated} duplicate deliveries`);
  if (r.unexpected > 0) p.push(`${label}: ${r.unexpected} unexpected deliveries`);
  if (r.publishErrors > 0) p.push(`${label}: ${r.publishErrors} publish errors (${r.publishFirstError ?? ''})`);
  if (r.closedDuringRun > 0) p.push(`${label}: ${r.closedDuringRun} connections closed during the run`);
  if (r.stoppedBy !== 'done') p.push(`${label}: stopped waiting (${r.stoppedBy}) before every delivery arrived`);
  return p;
}

export const ceilingScenario: Scenario = {
  name: 'ceiling',
  summary: 'bare ws server that frames as jetpull does by default (at once when idle, gathered while a write drains), pre-framed shared buffers: the physical limit (deliveries/s)',
  options: FANOUT_OPTIONS,
  async run(ctx): Promise<ScenarioOutcome> {
    const started = nowMs();
    const r = await measureCeiling(ctx);
    log(`ceiling done in ${Math.round((nowMs() - started) / 1000)} s`);
    return {
      params: ctx.opts.all(),
      results: fanoutJson(r),
      window: r.window,
      windows: [{ label: 'ceiling', window: r.window }],
      table: fanoutRows('ceiling', r),
      problems: fanoutProblems('ceiling', r),
    };
  },
};

/** The fan-out load as the options ask for it, the same for the ceiling, jetpull and nchan. */
export function fanoutLoadOptions(ctx: ScenarioContext, label: string, binary: boolean, settleMs: number): FanoutLoadOptions {
  const o = ctx.opts;
  const clients = o.num('clients');
  return {
    label,
    clients,
    messages: o.num('messages'),
    publishConcurrency: o.num('publishConcurrency'),
    connectConcurrency: o.num('connectConcurrency'),
    connectTimeoutMs: o.num('connectTimeoutS') * 1000,
    addresses: addressesFor(ctx, clients),
    bodyBytes: o.num('bodyBytes'),
    latencySampleEvery: o.num('latencySampleEvery'),
    binary,
    drainIdleMs: o.num('drainIdleS') * 1000,
    settleMs,
    deadline: ctx.deadline,
  };
}
