import { closeAll, connectWsMany } from '../lib/connect.ts';
import type { WindowStats } from '../lib/proc.ts';
import { ResourceSampler, type SampleTarget } from '../lib/proc.ts';
import { HttpPool, type HttpResponse } from '../lib/raw-http.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import { benchBody, scanBinary, scanText, type MessageSink } from '../lib/scan.ts';
import { Samples, type Percentiles } from '../lib/stats.ts';
import { boundedLoop, log, nowMs, round, sleep, waitUntil } from '../lib/util.ts';

/**
 * The fan-out load, shared by the ceiling, fanout and binary scenarios: C raw
 * WebSocket clients, M messages published as fast as they are acknowledged (bounded
 * concurrency), every client counts every message by its seq (loss and duplicate
 * detection with a Uint8Array per client), every n-th client records latency.
 */

export interface FanoutLoadOptions {
  label: string;
  clients: number;
  messages: number;
  publishConcurrency: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  addresses: readonly string[];
  bodyBytes: number;
  latencySampleEvery: number;
  binary: boolean;
  drainIdleMs: number;
  /** Quiet time after the warm-up (longer than the server's coalescing window). */
  settleMs: number;
  deadline: number;
}

export interface FanoutTarget {
  host: string;
  port: number;
  wsPath(i: number): string;
  /** Raw HTTP request that publishes `body` to every client. */
  publishRequest(body: string): string;
  /** Throws unless the answer acknowledges a publish. */
  expectAck(res: HttpResponse): void;
  targets: SampleTarget[];
  assertAlive(): void;
}

export interface FanoutLoadResult {
  connectS: number;
  connectRetries: number;
  connectRefused503: number;
  expectedDeliveries: number;
  deliveries: number;
  deliveriesPerSec: number;
  durationS: number;
  publishS: number;
  publishedAcked: number;
  publishErrors: number;
  publishFirstError?: string;
  publishRatePerSec: number;
  publishAckMs: Percentiles;
  latencyMs: Percentiles;
  latencySampledClients: number;
  lost: number;
  duplicated: number;
  unexpected: number;
  closedDuringRun: number;
  framesReceived: number;
  messagesPerFrame: number;
  bytesReceivedMiB: number;
  stoppedBy: string;
  window: WindowStats;
}

class Shared {
  unique = 0;
  dups = 0;
  frames = 0;
  msgs = 0;
  bytes = 0;
  unexpected = 0;
  closed = 0;
  warm = 0;
  lastDeliveryAt = 0;
  measuring = false;
  readonly lat = new Samples(4 << 20);
  /** Clients that got each message (first copies only). */
  readonly reached: Uint32Array;
  constructor(messages: number) {
    this.reached = new Uint32Array(messages);
  }
}

class FanoutClient implements MessageSink {
  readonly got: Uint8Array;
  now = 0;
  warm = false;
  ws: RawWs | undefined;

  constructor(
    private readonly shared: Shared,
    private readonly m: number,
    private readonly sampled: boolean,
    private readonly binary: boolean,
  ) {
    this.got = new Uint8Array(m);
  }

  onMsg(seq: number, _c: number, t: number): void {
    const s = this.shared;
    if (seq < 0) {
      if (!this.warm) {
        this.warm = true;
        s.warm++;
      }
      return;
    }
    if (seq >= this.m) {
      s.unexpected++;
      return;
    }
    const g = this.got[seq]!;
    if (g === 0) {
      this.got[seq] = 1;
      s.unique++;
      s.reached[seq]!++;
      s.lastDeliveryAt = this.now;
    } else {
      s.dups++;
      if (g < 255) this.got[seq] = g + 1;
    }
    if (this.sampled) s.lat.add(this.now - t);
  }

  onMessage(payload: Buffer, binary: boolean): void {
    this.now = nowMs();
    const s = this.shared;
    s.frames++;
    s.bytes += payload.length;
    s.msgs += binary || this.binary ? scanBinary(payload, this) : scanText(payload, this);
  }
}

export async function runFanoutLoad(target: FanoutTarget, o: FanoutLoadOptions): Promise<FanoutLoadResult> {
  const shared = new Shared(o.messages);
  const clients = Array.from(
    { length: o.clients },
    (_, i) => new FanoutClient(shared, o.messages, o.latencySampleEvery > 0 && i % o.latencySampleEvery === 0, o.binary),
  );
  log(`${o.label}: connecting ${o.clients} WebSocket clients from ${o.addresses.join(', ')}`);
  const { conns, ms: connectMs, retries, refused503 } = await connectWsMany({
    count: o.clients,
    concurrency: o.connectConcurrency,
    addresses: o.addresses,
    deadline: Math.min(o.deadline, nowMs() + Math.max(60_000, o.clients * 10)),
    label: o.label,
    host: target.host,
    port: target.port,
    timeoutMs: o.connectTimeoutMs,
    path: (i) => target.wsPath(i),
    handlers: (i) => ({
      onMessage: (p, b) => clients[i]!.onMessage(p, b),
      onClose: () => {
        if (shared.measuring) shared.closed++;
      },
    }),
  });
  conns.forEach((c, i) => (clients[i]!.ws = c));
  log(`${o.label}: ${o.clients} connected in ${round(connectMs / 1000, 2)} s`);

  const pool = new HttpPool(target.host, target.port, o.publishConcurrency);
  try {
    // Warm-up: until every client got one message, so every subscription is live.
    const warmBy = Math.min(o.deadline, nowMs() + 30_000);
    const warmStatus = await waitUntil(() => shared.warm >= o.clients, {
      deadline: warmBy,
      intervalMs: 500,
      onTick: () => {
        target.assertAlive();
        void pool.request(target.publishRequest(benchBody(-1, -1, nowMs(), o.bodyBytes))).then((res) => target.expectAck(res), () => undefined);
      },
    });
    if (warmStatus !== 'done') throw new Error(`${o.label}: only ${shared.warm}/${o.clients} clients got a warm-up message within 30 s`);
    await sleep(o.settleMs);
    target.assertAlive();

    shared.frames = 0;
    shared.msgs = 0;
    shared.bytes = 0;
    shared.measuring = true;
    const acked = new Uint8Array(o.messages);
    const ack = new Samples();
    let publishErrors = 0;
    let firstError: string | undefined;
    log(`${o.label}: publishing ${o.messages} messages (${o.publishConcurrency} in flight) to ${o.clients} clients`);
    const sampler = new ResourceSampler(target.targets).start();
    const firstPublishAt = nowMs();
    await boundedLoop(o.messages, o.publishConcurrency, o.deadline, async (i) => {
      const t0 = nowMs();
      try {
        target.expectAck(await pool.request(target.publishRequest(benchBody(i, -1, t0, o.bodyBytes))));
        acked[i] = 1;
        ack.add(nowMs() - t0);
      } catch (err) {
        publishErrors++;
        firstError ??= String(err);
      }
    });
    const publishEndAt = nowMs();
    let ackedCount = 0;
    for (let i = 0; i < o.messages; i++) ackedCount += acked[i]!;
    const expected = ackedCount * o.clients;
    // Done when every acknowledged message reached every client (a message whose publish timed out may arrive as well, or not).
    const reachedAcked = (): number => {
      let n = 0;
      for (let i = 0; i < o.messages; i++) if (acked[i] === 1) n += shared.reached[i]!;
      return n;
    };
    const stoppedBy = await waitUntil(() => reachedAcked() >= expected, {
      deadline: o.deadline,
      idleMs: o.drainIdleMs,
      progress: () => shared.unique,
      intervalMs: 10,
    });
    const window = sampler.stop();
    shared.measuring = false;
    target.assertAlive();

    let lost = 0;
    let unexpected = shared.unexpected;
    for (const c of clients) {
      const got = c.got;
      for (let i = 0; i < o.messages; i++) {
        if (acked[i] === 1) {
          if (got[i] === 0) lost++;
        } else if (got[i] !== 0) {
          unexpected++;
        }
      }
    }
    const lastAt = shared.lastDeliveryAt > 0 ? shared.lastDeliveryAt : nowMs();
    const durationS = (lastAt - firstPublishAt) / 1000;
    return {
      connectS: round(connectMs / 1000, 3),
      connectRetries: retries,
      connectRefused503: refused503,
      expectedDeliveries: expected,
      deliveries: shared.unique,
      deliveriesPerSec: round(durationS > 0 ? shared.unique / durationS : 0, 0),
      durationS: round(durationS, 3),
      publishS: round((publishEndAt - firstPublishAt) / 1000, 3),
      publishedAcked: ackedCount,
      publishErrors,
      ...(firstError === undefined ? {} : { publishFirstError: firstError }),
      publishRatePerSec: round(ackedCount / Math.max(0.001, (publishEndAt - firstPublishAt) / 1000), 0),
      publishAckMs: ack.summary(),
      latencyMs: shared.lat.summary(),
      latencySampledClients: clients.filter((_, i) => o.latencySampleEvery > 0 && i % o.latencySampleEvery === 0).length,
      lost,
      duplicated: shared.dups,
      unexpected,
      closedDuringRun: shared.closed,
      framesReceived: shared.frames,
      messagesPerFrame: round(shared.frames > 0 ? shared.msgs / shared.frames : 0, 2),
      bytesReceivedMiB: round(shared.bytes / 1024 / 1024, 1),
      stoppedBy,
      window,
    };
  } finally {
    pool.close();
    await closeAll(conns);
  }
}
