import { connect } from '@nats-io/transport-node';
import type { Deployment } from '../lib/deploy.ts';
import { requireFds } from '../lib/env.ts';
import { ResourceSampler, type WindowStats } from '../lib/proc.ts';
import { binaryPublishHead, encodeIncomingBatch, expectAck, textPublishRequest } from '../lib/publish.ts';
import { isBatchStored, isMidsReply, NatsRequester } from '../lib/nats-requester.ts';
import { HttpPool } from '../lib/raw-http.ts';
import { cpuRow, windowJson, type ScenarioOutcome, type TableRow } from '../lib/report.ts';
import { benchBody } from '../lib/scan.ts';
import { deploymentFor, type Scenario } from '../lib/scenario.ts';
import { Samples, fmtLatency, type Percentiles } from '../lib/stats.ts';
import { fmtInt, log, nowMs, randomHexId, round, sleep } from '../lib/util.ts';

/**
 * Acknowledged publishes per second through the three entry points, each for T
 * seconds (or N messages): HTTP text (one message per request), HTTP protobuf
 * (RequestBatch of 100 incomingMessages, --receivers each, 1 by default), native NATS
 * request/reply on push.publish (one message per request) and NATS batches (one
 * request of --batch-size messages). Requests are built before the timed window; each
 * path runs closed-loop with its own concurrency.
 */

interface PathResult {
  path: string;
  concurrency: number;
  messagesPerRequest: number;
  requests: number;
  ackedMessages: number;
  errors: number;
  firstError?: string;
  durationS: number;
  messagesPerSec: number;
  requestsPerSec: number;
  requestLatencyMs: Percentiles;
  window: WindowStats;
}

async function closedLoop(
  path: string,
  dep: Deployment,
  concurrency: number,
  perRequest: number,
  durationMs: number,
  maxMessages: number,
  deadline: number,
  send: (i: number) => Promise<void>,
): Promise<PathResult> {
  const lat = new Samples();
  let issued = 0;
  let ok = 0;
  let errors = 0;
  let firstError: string | undefined;
  const maxRequests = maxMessages > 0 ? Math.ceil(maxMessages / perRequest) : Infinity;
  const sampler = new ResourceSampler(dep.targets).start();
  const start = nowMs();
  const stopAt = Math.min(start + durationMs, deadline);
  const worker = async (): Promise<void> => {
    while (nowMs() < stopAt && issued < maxRequests) {
      const i = issued++;
      const t0 = nowMs();
      try {
        await send(i);
        ok++;
        lat.add(nowMs() - t0);
      } catch (err) {
        errors++;
        firstError ??= String(err);
        if (errors > 1000) await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (nowMs() - start) / 1000;
  const window = sampler.stop();
  return {
    path,
    concurrency,
    messagesPerRequest: perRequest,
    requests: ok,
    ackedMessages: ok * perRequest,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    durationS: round(elapsedS, 3),
    messagesPerSec: round((ok * perRequest) / elapsedS, 0),
    requestsPerSec: round(ok / elapsedS, 0),
    requestLatencyMs: lat.summary(),
    window,
  };
}

/**
 * CPU time per acknowledged message (µs) of the load generator and each sampled server.
 * It depends less than messages/s on how much of the machine other work leaves over
 * (though contention still inflates it), so a change is compared by it, alternating
 * before and after in the same hour.
 */
function cpuPerMessage(w: WindowStats, messagesPerSec: number): Record<string, number> {
  const us = (pct: number): number => (messagesPerSec > 0 ? round((pct * 10_000) / messagesPerSec, 2) : 0);
  const out: Record<string, number> = { loadgen: us(w.loadgenPct) };
  for (const [name, s] of Object.entries(w.servers)) out[name] = us(s.cpuPct);
  return out;
}

export const publishScenario: Scenario = {
  name: 'publish',
  summary: 'acknowledged publishes/s via HTTP text, HTTP protobuf batches, NATS request/reply and NATS batches',
  options: {
    path: { type: 'string', default: 'all', help: 'text | protobuf | nats | nats-batch | all' },
    durationS: { type: 'number', default: 10, help: 'time per path (T)' },
    messages: { type: 'number', default: 0, help: 'stop a path after this many messages (0: only the time limit)' },
    textConcurrency: { type: 'number', default: 64, help: 'HTTP text publishes in flight' },
    protobufConcurrency: { type: 'number', default: 8, help: 'HTTP protobuf requests in flight' },
    batchSize: { type: 'number', default: 100, help: 'messages per protobuf request and per NATS batch' },
    receivers: { type: 'number', default: 1, help: 'private receivers of each protobuf message (copies stored per message)' },
    natsConcurrency: { type: 'number', default: 256, help: 'NATS requests in flight' },
    natsBatchConcurrency: { type: 'number', default: 8, help: 'NATS batch requests in flight' },
    channels: { type: 'number', default: 1000, help: 'private channels the messages are spread over (nobody subscribed)' },
    expiryS: { type: 'number', default: 60, help: 'Message-Expiry of every message' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const which = o.str('path');
    const all = ['text', 'protobuf', 'nats', 'nats-batch'];
    const paths = which === 'all' ? all : [which];
    for (const p of paths) if (!all.includes(p)) throw new Error(`--path ${p}: one of ${all.join(', ')}, all`);
    requireFds(0, o.num('textConcurrency') + o.num('protobufConcurrency') + 16, 'publish');
    const dep = await deploymentFor(ctx);
    try {
      const durationMs = o.num('durationS') * 1000;
      const maxMessages = o.num('messages');
      const expiry = o.num('expiryS');
      const bodyBytes = o.num('bodyBytes');
      const channels = Array.from({ length: o.num('channels') }, () => randomHexId());
      const pick = (i: number): string => channels[(i * 7919) % channels.length]!;
      const results: Record<string, unknown> = {};
      const table: TableRow[] = [];
      const problems: string[] = [];
      const windows: Array<{ label: string; window: WindowStats }> = [];
      const record = (r: PathResult): void => {
        const { window, ...rest } = r;
        const perMessage = cpuPerMessage(window, r.messagesPerSec);
        results[r.path] = { ...rest, ...windowJson(window), cpuUsPerMessage: perMessage };
        windows.push({ label: `publish ${r.path}`, window });
        table.push(
          [`${r.path} acked msgs/s`, `${fmtInt(r.messagesPerSec)} (${fmtInt(r.ackedMessages)} in ${r.durationS} s; ${r.messagesPerRequest}/request, ${r.concurrency} in flight, errors ${r.errors})`],
          [`${r.path} request latency`, fmtLatency(r.requestLatencyMs)],
          cpuRow(r.path, window),
          [`${r.path} cpu per message`, Object.entries(perMessage).map(([k, v]) => `${k} ${v} µs`).join(', ')],
        );
        if (r.errors > 0) problems.push(`publish ${r.path}: ${r.errors} errors (${r.firstError ?? ''})`);
      };

      for (const path of paths) {
        dep.assertAlive();
        if (path === 'text') {
          const n = o.num('textConcurrency');
          const reqs = Array.from({ length: 1024 }, (_, i) => textPublishRequest(dep.host, dep.port, pick(i), benchBody(i, -1, nowMs(), bodyBytes), expiry));
          const pool = new HttpPool(dep.host, dep.port, n);
          log(`publish text: ${n} in flight for ${durationMs / 1000} s`);
          try {
            record(await closedLoop('text', dep, n, 1, durationMs, maxMessages, ctx.deadline, async (i) => expectAck(await pool.request(reqs[i % reqs.length]!))));
          } finally {
            pool.close();
          }
        } else if (path === 'protobuf') {
          const n = o.num('protobufConcurrency');
          const size = o.num('batchSize');
          const receivers = o.num('receivers');
          const batches = Array.from({ length: 64 }, (_, b) =>
            encodeIncomingBatch(
              Array.from({ length: size }, (_, j) => {
                const i = b * size + j;
                const alsoTo = Array.from({ length: receivers - 1 }, (_, r) => channels[(i * 7919 + (r + 1) * 104_729) % channels.length]!);
                return { channel: pick(i), alsoTo, body: benchBody(i, -1, nowMs(), bodyBytes), expirySec: expiry };
              }),
            ),
          );
          const heads = batches.map((b) => binaryPublishHead(dep.host, dep.port, b.length));
          const pool = new HttpPool(dep.host, dep.port, n);
          log(`publish protobuf: ${n} requests of ${size} messages to ${receivers} receivers each in flight for ${durationMs / 1000} s`);
          try {
            record(
              await closedLoop('protobuf', dep, n, size, durationMs, maxMessages, ctx.deadline, async (i) =>
                expectAck(await pool.request(heads[i % heads.length]!, batches[i % batches.length]!)),
              ),
            );
          } finally {
            pool.close();
          }
        } else {
          if (dep.natsUrl === undefined) {
            problems.push('publish nats: skipped, no --nats URL for the external deployment');
            continue;
          }
          const batched = path === 'nats-batch';
          const n = o.num(batched ? 'natsBatchConcurrency' : 'natsConcurrency');
          const size = batched ? o.num('batchSize') : 1;
          const enc = new TextEncoder();
          const envelope = (i: number): object => ({ channels: [pick(i)], body: benchBody(i, -1, nowMs(), bodyBytes), expiry });
          const payloads = Array.from({ length: batched ? 64 : 1024 }, (_, i) =>
            enc.encode(JSON.stringify(batched ? { messages: Array.from({ length: size }, (_, j) => envelope(i * size + j)) } : envelope(i))),
          );
          const nc = await connect({ servers: dep.natsUrl, name: 'jetpull-bench', noAsyncTraces: true });
          const requester = new NatsRequester(nc, 10_000);
          log(`publish ${path}: ${n} requests${batched ? ` of ${size} messages` : ''} in flight for ${durationMs / 1000} s`);
          try {
            record(
              await closedLoop(path, dep, n, size, durationMs, maxMessages, ctx.deadline, async (i) => {
                const reply = await requester.request('push.publish', payloads[i % payloads.length]!);
                if (batched ? !isBatchStored(reply, size) : !isMidsReply(reply)) throw new Error(`push.publish answered ${new TextDecoder().decode(reply.subarray(0, 200))}`);
              }),
            );
          } finally {
            requester.close();
            await nc.close();
          }
        }
        await sleep(1_000);
      }
      const logCounts = dep.logCounts();
      await dep.stop();
      if (logCounts.error + logCounts.fatal > 0) problems.push(`jetpull logged ${logCounts.error} errors, ${logCounts.fatal} fatal (${dep.logFile})`);
      return {
        params: o.all(),
        results: { ...results, serverLogLines: logCounts },
        window: windows[0]!.window,
        windows,
        table,
        problems,
        serverLog: dep.logFile,
      };
    } finally {
      await dep.stop();
    }
  },
};
