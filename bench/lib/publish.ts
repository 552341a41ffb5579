import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { HttpPool, type HttpResponse } from './raw-http.ts';
import { Samples } from './stats.ts';
import { nowMs, sleep } from './util.ts';

/** Publish requests as the PHP pull module sends them, over the raw keep-alive pool. */

export function textPublishRequest(host: string, port: number, channelId: string, body: string, expirySec: number): string {
  return (
    `POST /bitrix/pub/?CHANNEL_ID=${channelId} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: text/plain\r\n` +
    (expirySec > 0 ? `Message-Expiry: ${expirySec}\r\n` : '') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export function binaryPublishHead(host: string, port: number, length: number): string {
  return (
    `POST /bitrix/pub/?binaryMode=true&hostname=bench HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`
  );
}

const root = protobuf.loadSync(fileURLToPath(new URL('../../src/wire/push.proto', import.meta.url)));
const RequestBatch = root.lookupType('RequestBatch');

export interface BatchItem {
  /** 32-hex private channel id. */
  channel: string;
  /** Further private receivers of the same message. */
  alsoTo?: readonly string[];
  body: string;
  expirySec: number;
}

/** RequestBatch { requests: [{ incomingMessages: { messages } }] }, private receivers. */
export function encodeIncomingBatch(items: readonly BatchItem[]): Buffer {
  const messages = items.map((m) => ({
    receivers: [m.channel, ...(m.alsoTo ?? [])].map((c) => ({ id: Buffer.from(c, 'hex'), isPrivate: true })),
    body: m.body,
    expiry: m.expirySec,
    type: 'bench_m',
  }));
  return Buffer.from(RequestBatch.encode(RequestBatch.create({ requests: [{ incomingMessages: { messages } }] })).finish());
}

export class PublishError extends Error {}

/** Throws unless the publish was acknowledged with an empty 200. */
export function expectAck(res: HttpResponse): void {
  if (res.status !== 200) throw new PublishError(`publish answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
}

/**
 * Sends many private-channel messages as protobuf batches (used for warm-up and
 * bulk loads), with bounded concurrency. Returns the count of acknowledged messages.
 */
export async function publishBatches(
  pool: HttpPool,
  host: string,
  port: number,
  items: readonly BatchItem[],
  batchSize: number,
  deadline: number,
): Promise<{ acked: number; failed: number; firstError?: string }> {
  let acked = 0;
  let failed = 0;
  let firstError: string | undefined;
  const batches: BatchItem[][] = [];
  for (let i = 0; i < items.length; i += batchSize) batches.push(items.slice(i, i + batchSize));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length && nowMs() < deadline) {
      const batch = batches[next++]!;
      const bytes = encodeIncomingBatch(batch);
      try {
        const res = await pool.request(binaryPublishHead(host, port, bytes.length), bytes);
        expectAck(res);
        acked += batch.length;
      } catch (err) {
        failed += batch.length;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(pool.size, batches.length) }, worker));
  return { acked, failed, ...(firstError === undefined ? {} : { firstError }) };
}

export interface PacedResult {
  issued: number;
  completed: number;
  failed: number;
  firstError?: string;
  /** Issued per second over the issuing period. */
  achievedRate: number;
  /** Largest number of due publishes that had to wait for a free slot. */
  maxBacklog: number;
  ack: Samples;
  startedAt: number;
  endedAt: number;
}

/**
 * Issues `fire(i)` at `rate` per second for `durationMs`, rate × duration calls in
 * all (token bucket driven by short timers, catching up in batches when the loop is
 * late, never busy-waiting), with at most `maxInFlight` outstanding. Gives up issuing
 * at 1.5 × duration + 1 s; waits for outstanding ones until `deadline`.
 */
export async function runPaced(opts: {
  rate: number;
  durationMs: number;
  maxInFlight: number;
  deadline: number;
  fire: (i: number) => Promise<void>;
  tickMs?: number;
  /** Checked every tick: true stops issuing early. */
  stop?: () => boolean;
}): Promise<PacedResult> {
  const ack = new Samples();
  let issued = 0;
  let completed = 0;
  let failed = 0;
  let inFlight = 0;
  let maxBacklog = 0;
  let firstError: string | undefined;
  const start = nowMs();
  const total = Math.floor((opts.rate * opts.durationMs) / 1000);
  // Every one of the `total` publishes is issued, unless the loop falls this far behind.
  const stopIssuing = Math.min(start + opts.durationMs * 1.5 + 1_000, opts.deadline);
  const one = (i: number): void => {
    inFlight++;
    const t0 = nowMs();
    opts.fire(i).then(
      () => {
        inFlight--;
        completed++;
        ack.add(nowMs() - t0);
      },
      (err: unknown) => {
        inFlight--;
        failed++;
        firstError ??= String(err);
      },
    );
  };
  for (;;) {
    const t = nowMs();
    if (t >= stopIssuing || issued >= total || opts.stop?.() === true) break;
    const due = Math.min(total, Math.floor(((t - start) * opts.rate) / 1000)) - issued;
    if (due > 0) {
      const room = opts.maxInFlight - inFlight;
      maxBacklog = Math.max(maxBacklog, due - room);
      const n = Math.min(due, room);
      for (let k = 0; k < n; k++) one(issued++);
    }
    await sleep(opts.tickMs ?? 2);
  }
  const endedAt = nowMs();
  while (inFlight > 0 && nowMs() < opts.deadline) await sleep(5);
  const spanS = (endedAt - start) / 1000;
  return {
    issued,
    completed,
    failed,
    ...(firstError === undefined ? {} : { firstError }),
    achievedRate: spanS > 0 ? issued / spanS : 0,
    maxBacklog: Math.max(0, maxBacklog),
    ack,
    startedAt: start,
    endedAt,
  };
}
