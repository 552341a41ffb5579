import { closeAll, connectWsMany } from '../lib/connect.ts';
import { ResourceSampler, type WindowStats } from '../lib/proc.ts';
import { runPaced } from '../lib/publish.ts';
import { HttpPool } from '../lib/raw-http.ts';
import type { RawWs } from '../lib/raw-ws.ts';
import { benchBody, scanBinary, scanText, type MessageSink } from '../lib/scan.ts';
import { Samples, type Percentiles } from '../lib/stats.ts';
import type { PushTarget } from '../lib/targets.ts';
import { log, nowMs, randomHexId, round, sleep, waitUntil } from '../lib/util.ts';

/**
 * C WebSocket subscribers, each on its own private channel; a paced publisher sends
 * R messages per second for T seconds, each to a random client, over HTTP text
 * publishes. Every message is checked (loss, duplicate, misrouting) and timed.
 *
 * The server coalesces a connection's messages that arrive within its window after a
 * frame (400 ms by default): such messages wait for the window by design. The
 * publisher keeps a model of every connection's window (a frame opens one; a message
 * inside it waits and is flushed at its end, which opens the next) and marks every
 * message that may have waited (50 ms of slack), so the latency of messages that
 * could not have been held by the window is reported on its own too.
 */

export interface UnicastLoadOptions {
  label: string;
  clients: number;
  rate: number;
  durationMs: number;
  maxInFlight: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  addresses: readonly string[];
  bodyBytes: number;
  binary: boolean;
  coalesceMs: number;
  drainIdleMs: number;
  deadline: number;
}

export interface UnicastLoadResult {
  connectS: number;
  connectRetries: number;
  connectRefused503: number;
  targetRate: number;
  achievedRate: number;
  issued: number;
  acked: number;
  publishErrors: number;
  publishFirstError?: string;
  maxBacklog: number;
  deliveries: number;
  lost: number;
  duplicated: number;
  misrouted: number;
  unexpected: number;
  closedDuringRun: number;
  latencyMs: Percentiles;
  latencyNotCoalescableMs: Percentiles;
  coalescableShare: number;
  publishAckMs: Percentiles;
  framesReceived: number;
  messagesPerFrame: number;
  stoppedBy: string;
  window: WindowStats;
}

class State {
  unique = 0;
  dups = 0;
  misrouted = 0;
  unexpected = 0;
  frames = 0;
  msgs = 0;
  warm = 0;
  closed = 0;
  measuring = false;
  readonly lat = new Samples(4 << 20);
  readonly latPlain = new Samples(4 << 20);
  constructor(
    readonly got: Uint8Array,
    readonly coalescable: Uint8Array,
  ) {}
}

class UnicastClient implements MessageSink {
  now = 0;
  warm = false;
  constructor(
    private readonly s: State,
    private readonly index: number,
    private readonly binary: boolean,
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
      const l = this.now - t;
      s.lat.add(l);
      if (s.coalescable[seq] === 0) s.latPlain.add(l);
    } else {
      s.dups++;
    }
  }

  onMessage(payload: Buffer, binary: boolean): void {
    this.now = nowMs();
    this.s.frames++;
    this.s.msgs += binary || this.binary ? scanBinary(payload, this) : scanText(payload, this);
  }
}

export async function runUnicastLoad(dep: PushTarget, o: UnicastLoadOptions): Promise<UnicastLoadResult> {
  const total = Math.floor((o.rate * o.durationMs) / 1000);
  const state = new State(new Uint8Array(total), new Uint8Array(total));
  const privs = Array.from({ length: o.clients }, () => randomHexId());
  const clients = privs.map((_, i) => new UnicastClient(state, i, o.binary));
  log(`${o.label}: connecting ${o.clients} WebSocket clients from ${o.addresses.join(', ')}`);
  const { conns, ms: connectMs, retries, refused503 } = await connectWsMany({
    count: o.clients,
    concurrency: o.connectConcurrency,
    addresses: o.addresses,
    deadline: Math.min(o.deadline, nowMs() + Math.max(60_000, o.clients * 10)),
    label: o.label,
    host: dep.host,
    port: dep.port,
    timeoutMs: o.connectTimeoutMs,
    path: (i) => dep.wsPath([privs[i]!], o.binary),
    handlers: (i) => ({
      onMessage: (p, b) => clients[i]!.onMessage(p, b),
      onClose: () => {
        if (state.measuring) state.closed++;
      },
    }),
  });
  log(`${o.label}: ${o.clients} connected in ${round(connectMs / 1000, 2)} s`);
  const pool = new HttpPool(dep.host, dep.port, o.maxInFlight);
  const batchPool = new HttpPool(dep.host, dep.port, 8);
  try {
    // Warm-up: one message to every client (protobuf batches), repeated for the ones that miss it.
    const warmBy = Math.min(o.deadline, nowMs() + 60_000);
    while (state.warm < o.clients && nowMs() < warmBy) {
      dep.assertAlive();
      const items = clients
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => !c.warm)
        .map(({ i }) => ({ channel: privs[i]!, body: benchBody(-1, i, nowMs(), o.bodyBytes), expirySec: 0 }));
      await dep.publishMany(batchPool, items, warmBy);
      await waitUntil(() => state.warm >= o.clients, { deadline: Math.min(warmBy, nowMs() + 2_000) });
    }
    if (state.warm < o.clients) throw new Error(`${o.label}: only ${state.warm}/${o.clients} clients got a warm-up message`);
    await sleep(o.coalesceMs + 200);
    dep.assertAlive();

    state.frames = 0;
    state.msgs = 0;
    state.measuring = true;
    const acked = new Uint8Array(total);
    // The publisher's model of every connection's coalescing window (see the header comment).
    const windowEnd = new Float64Array(o.clients).fill(-Infinity);
    const pending = new Uint8Array(o.clients);
    const margin = 50;
    log(`${o.label}: publishing ${o.rate}/s for ${o.durationMs / 1000} s to random clients`);
    const sampler = new ResourceSampler(dep.targets).start();
    const paced = await runPaced({
      rate: o.rate,
      durationMs: o.durationMs,
      maxInFlight: o.maxInFlight,
      deadline: o.deadline,
      fire: async (i) => {
        const k = Math.floor(Math.random() * o.clients);
        const t = nowMs();
        if (o.coalesceMs > 0) {
          // Windows that ended before t: a pending message was flushed at the end and opened a new window.
          while (windowEnd[k]! !== -Infinity && t > windowEnd[k]! + margin) {
            if (pending[k] === 1) {
              pending[k] = 0;
              windowEnd[k] = windowEnd[k]! + o.coalesceMs;
            } else {
              windowEnd[k] = -Infinity;
            }
          }
          if (windowEnd[k] === -Infinity) {
            windowEnd[k] = t + o.coalesceMs;
          } else {
            state.coalescable[i] = 1;
            pending[k] = 1;
          }
        }
        dep.expectAck(await pool.request(dep.publishRequest(privs[k]!, benchBody(i, k, t, o.bodyBytes), 60)));
        acked[i] = 1;
      },
    });
    let ackedCount = 0;
    for (let i = 0; i < total; i++) ackedCount += acked[i]!;
    // Done when every acknowledged message arrived (one whose publish failed may arrive as well, or not).
    const gotAcked = (): number => {
      let n = 0;
      for (let i = 0; i < total; i++) n += acked[i]! & state.got[i]!;
      return n;
    };
    const stoppedBy = await waitUntil(() => gotAcked() >= ackedCount, {
      deadline: Math.min(o.deadline, nowMs() + 60_000),
      idleMs: o.drainIdleMs,
      progress: () => state.unique,
    });
    const window = sampler.stop();
    state.measuring = false;
    dep.assertAlive();
    let lost = 0;
    let unexpected = state.unexpected;
    let coalescable = 0;
    for (let i = 0; i < total; i++) {
      if (acked[i] === 1 && state.got[i] === 0) lost++;
      if (acked[i] === 0 && state.got[i] === 1) unexpected++;
      coalescable += state.coalescable[i]!;
    }
    return {
      connectS: round(connectMs / 1000, 3),
      connectRetries: retries,
      connectRefused503: refused503,
      targetRate: o.rate,
      achievedRate: round(paced.achievedRate, 1),
      issued: paced.issued,
      acked: ackedCount,
      publishErrors: paced.failed,
      ...(paced.firstError === undefined ? {} : { publishFirstError: paced.firstError }),
      maxBacklog: paced.maxBacklog,
      deliveries: state.unique,
      lost,
      duplicated: state.dups,
      misrouted: state.misrouted,
      unexpected,
      closedDuringRun: state.closed,
      latencyMs: state.lat.summary(),
      latencyNotCoalescableMs: state.latPlain.summary(),
      coalescableShare: round(paced.issued > 0 ? coalescable / paced.issued : 0, 4),
      publishAckMs: paced.ack.summary(),
      framesReceived: state.frames,
      messagesPerFrame: round(state.frames > 0 ? state.msgs / state.frames : 0, 3),
      stoppedBy,
      window,
    };
  } finally {
    pool.close();
    batchPool.close();
    await closeAll(conns as RawWs[]);
  }
}
