import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { declarations, MESSAGE_STREAM, PRESENCE_BUCKET } from '../../streams/index.ts';
import { messageStream } from '../../streams/messages.ts';
import { StreamSpecSchema } from '../../streams/schema.ts';
import { startNatsNodes, type NatsNodes } from '../lib/nats-nodes.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import { ResourceSampler } from '../lib/proc.ts';
import type { Scenario } from '../lib/scenario.ts';
import { fmtInt, log, randomHexId, sleep } from '../lib/util.ts';
import { timedWrites, type WriteRun } from '../lib/write-loop.ts';

/**
 * The write ceiling of the stores every gateway and publisher shares, measured with
 * jetpull's own writers against the resources streams/ declares:
 * - `stream`: acknowledged message writes (the appender, republish on) to one
 *   PUSH_MESSAGES stream, and to S shard streams at once (`PUSH_MESSAGES_S<k>`,
 *   subjects `push.msg.s<k>.>`, leaders spread over the nodes where possible);
 * - `presence`: KV puts of presence keys (PUSH_PRESENCE), as gateways write them;
 * - `snapshot`: KV puts of one large value per gateway (a bulk presence record);
 * - `subjects` (on request, alone: it slows the servers' GC down to read their live
 *   heap): what a stored message, a recent write, a distinct channel and a presence
 *   key hold in each node's memory.
 * On one server (R1) and on a 3-node loopback cluster (R3). Every node's CPU is read
 * from /proc, so each figure comes with CPU microseconds per acknowledged write on the
 * stream leader, on each follower and in the writer.
 */

interface PathResult extends WriteRun {
  replicas: number;
  path: string;
  streams: number;
  /** Stream name → leader node (R3). */
  leaders: Record<string, string>;
}

const logger = createRootLogger({ level: 'warn', processUniqueId: 'bench', version: 'bench' });

function shardSpec(k: number, replicas: number, perMessageTtl: boolean) {
  const base = messageStream({ messageTtlSec: 3600, duplicateWindowMs: 120_000, replicas, maxBytes: -1, maxPayloadBytes: 1 << 20, perMessageTtl, atomicBatch: false });
  return StreamSpecSchema.parse({
    ...base,
    name: `${MESSAGE_STREAM}_S${k}`,
    subjects: [`push.msg.s${k}.>`],
    republish: { src: `push.msg.s${k}.>`, dest: `push.live.s${k}.>` },
  });
}

async function streamNames(access: NatsAccess): Promise<string[]> {
  const reply = await access.link.nc.request('$JS.API.STREAM.NAMES', undefined, { timeout: 5_000 });
  return (reply.json<{ streams: string[] | null }>().streams ?? []);
}

/** Moves stream leaders until no two share a node (a few step-downs each at most). */
async function spreadLeaders(access: NatsAccess, names: readonly string[], replicas: number): Promise<Record<string, string>> {
  const leaderOf = async (n: string): Promise<string> => (await access.streamReader(n, { replicas }).position()).leader ?? 'n1';
  const leaders: Record<string, string> = {};
  for (const n of names) leaders[n] = await leaderOf(n);
  if (replicas === 1) return leaders;
  for (let attempt = 0; attempt < 12; attempt++) {
    const seen = new Set<string>();
    const clash = names.find((n) => (seen.has(leaders[n]!) ? true : (seen.add(leaders[n]!), false)));
    if (clash === undefined || names.length > 3) break;
    await access.link.nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${clash}`, undefined, { timeout: 5_000 }).catch(() => undefined);
    for (let i = 0; i < 40; i++) {
      await sleep(250);
      const l = await leaderOf(clash).catch(() => '');
      if (l !== '') {
        leaders[clash] = l;
        break;
      }
    }
  }
  return leaders;
}

interface SubjectState {
  replicas: number;
  writes: number;
  memoryMiB: Record<string, { rss: Record<string, number>; live: Record<string, number> }>;
  /** Go live heap after GC, per node: what each stored message, recent write, distinct subject and presence key holds. */
  liveHeapBytes: {
    perStoredMessage: Record<string, number>;
    /** Gone once the duplicate window (2 min) and the file store's caches let go of it. */
    perWriteInDuplicateWindow: Record<string, number>;
    perSubject: Record<string, number>;
    perPresenceKey: Record<string, number>;
  };
}

const subjectState: SubjectState[] = [];

async function runShape(replicas: 1 | 3, o: ScenarioOutcome['params'], binary: string | undefined, out: PathResult[]): Promise<void> {
  // The per-subject path reads the servers' live heap (GC trace, GOGC=10: more GC CPU, so run it on its own).
  const gcTrace = String(o.paths).split(',').includes('subjects');
  const nodes: NatsNodes = await startNatsNodes(replicas === 1 ? 1 : 3, binary, 'bench-writes', { gcTrace });
  const cfg = parseConfig({ nats: { url: nodes.url }, storage: { streamReplicas: replicas } });
  const access = await NatsAccess.open(cfg.nats, nodes.url, logger);
  const appender = access.appender();
  try {
    const perMessageTtl = access.serverAtLeast(2, 11);
    const decl = declarations({ ...cfg.storage, replicas, maxBytes: -1, maxPayloadBytes: cfg.limits.maxPayloadBytes, perMessageTtl, atomicBatch: false });
    await access.ensure(decl, logger, { updateExisting: true });
    const durationMs = Number(o.durationS) * 1000;
    const channels = Array.from({ length: Number(o.channels) }, () => `priv.${randomHexId()}`);
    const body = Buffer.from(JSON.stringify({ module_id: 'im', command: 'message', params: { text: 'x'.repeat(Math.max(0, Number(o.bodyBytes) - 60)) } }));
    const paths = String(o.paths).split(',');
    const record = async (path: string, streams: readonly string[], run: WriteRun): Promise<void> => {
      const leaders = await spreadLeaders(access, streams, replicas).catch(() => ({}));
      out.push({ replicas, path, streams: streams.length, leaders, ...run });
      log(`R${replicas} ${path} (${streams.length} stream(s), leaders ${JSON.stringify(leaders)}): ${fmtInt(run.acked)} acked in ${run.seconds} s = ${fmtInt(run.perSec)}/s, failed ${run.failed}; CPU us/write ${JSON.stringify(run.nodeCpuUsPerWrite)}, writer ${run.clientCpuUsPerWrite}`);
    };
    if (paths.includes('subjects')) {
      // Per-subject state of the stream: the same count of writes to a few subjects, then each to a subject of its own.
      const N = Number(o.subjectCount);
      type Memory = { rss: Record<string, number>; live: Record<string, number> };
      const memory = async (waitMs: number): Promise<Memory> => {
        await sleep(waitMs);
        const rss: Record<string, number> = {};
        const live: Record<string, number> = {};
        for (const n of nodes.nodes) {
          live[n.name] = await n.liveHeapMiB();
          rss[n.name] = Math.round(n.rssKiB() / 102.4) / 10;
        }
        return { rss, live };
      };
      const bytes = (mib: number, count: number): number => Math.round((mib * 1024 * 1024) / count);
      const each = (f: (name: string) => number): Record<string, number> => Object.fromEntries(nodes.nodes.map((n) => [n.name, f(n.name)]));
      const meta = { expirySec: 3600 };
      // Late readings come after the duplicate window (2 min) and the file store's caches have let go.
      const lateMs = Number(o.subjectsLateS) * 1000;
      const m0 = await memory(2_000);
      await timedWrites(nodes, 600_000, Number(o.inFlight), (i) => appender.append(channels[i % 100]!, body, `few${i}`, meta, 10_000), 2 * N);
      const m1early = await memory(5_000);
      const m1 = await memory(Math.max(0, lateMs - 5_000));
      const distinct = await timedWrites(nodes, 600_000, Number(o.inFlight), (i) => appender.append(`priv.${randomHexId()}`, body, `distinct${i}`, meta, 10_000), N);
      const m2 = await memory(lateMs);
      const kv = await access.bucket(PRESENCE_BUCKET);
      await timedWrites(nodes, 600_000, Number(o.presenceInFlight), () => kv.put(`priv.${randomHexId()}`, 'gateway-host/jetpull-1'), N);
      // Presence keys live storage.onlineTtlSec + onlineDeltaSec (130 s): read before they expire.
      const m3 = await memory(Math.min(30_000, lateMs));
      const perMessage = each((n) => bytes(m1.live[n]! - m0.live[n]!, 2 * N));
      const state: SubjectState = {
        replicas,
        writes: N,
        memoryMiB: { emptyStream: m0, fewSubjectsEarly: m1early, fewSubjectsLate: m1, distinctSubjectsLate: m2, presenceKeys: m3 },
        liveHeapBytes: {
          perStoredMessage: perMessage,
          perWriteInDuplicateWindow: each((n) => bytes(m1early.live[n]! - m1.live[n]!, 2 * N)),
          perSubject: each((n) => bytes(m2.live[n]! - m1.live[n]! - (perMessage[n]! * N) / (1024 * 1024), N)),
          perPresenceKey: each((n) => bytes(m3.live[n]! - m2.live[n]!, N)),
        },
      };
      subjectState.push(state);
      log(`R${replicas} subjects: live heap MiB ${JSON.stringify(m0.live)} -> ${JSON.stringify(m1early.live)} / ${JSON.stringify(m1.live)} (${2 * N} writes to 100 channels, early / late) -> ${JSON.stringify(m2.live)} (${N} to as many channels) -> ${JSON.stringify(m3.live)} (${N} presence keys): ${JSON.stringify(state.liveHeapBytes)} B`);
      await record('subjects (distinct)', [MESSAGE_STREAM], distinct);
    }
    if (paths.includes('stream')) {
      const meta = { expirySec: 3600 };
      const run = await timedWrites(nodes, durationMs, Number(o.inFlight), (i) => appender.append(channels[i % channels.length]!, body, `w${i}`, meta, 10_000));
      await record('stream', [MESSAGE_STREAM], run);
      for (const s of String(o.shards).split(',').map(Number).filter((n) => n > 1)) {
        // The shards' subjects lie inside the single stream's: it goes first (and the previous shards).
        for (const old of await streamNames(access)) if (old.startsWith(MESSAGE_STREAM)) await access.link.nc.request(`$JS.API.STREAM.DELETE.${old}`, undefined, { timeout: 10_000 });
        const names: string[] = [];
        for (let k = 0; k < s; k++) {
          const spec = shardSpec(k, replicas, perMessageTtl);
          await access.ensureStream(spec, logger);
          names.push(spec.name);
        }
        await spreadLeaders(access, names, replicas);
        const sharded = await timedWrites(nodes, durationMs, Number(o.inFlight), (i) =>
          appender.append(`s${i % s}.${channels[i % channels.length]!}`, body, `s${s}.${i}`, meta, 10_000),
        );
        await record(`stream x${s} shards`, names, sharded);
      }
    }
    if (paths.includes('presence')) {
      const kv = await access.bucket(PRESENCE_BUCKET);
      const keys = Array.from({ length: Number(o.presenceKeys) }, () => `priv.${randomHexId()}`);
      const run = await timedWrites(nodes, durationMs, Number(o.presenceInFlight), (i) => kv.put(keys[i % keys.length]!, 'gateway-host/jetpull-1'));
      await record('presence', [`KV_${PRESENCE_BUCKET}`], run);
    }
    if (paths.includes('snapshot')) {
      const kv = await access.bucket(PRESENCE_BUCKET);
      const value = 'a'.repeat(Number(o.snapshotKib) * 1024);
      const run = await timedWrites(nodes, durationMs, 4, (i) => kv.put(`gw.${i % 20}`, value));
      await record(`snapshot ${o.snapshotKib} KiB`, [`KV_${PRESENCE_BUCKET}`], run);
    }
  } finally {
    appender.close();
    await access.close();
    await nodes.stop();
  }
}

export const clusterWritesScenario: Scenario = {
  name: 'cluster-writes',
  summary: 'acknowledged writes/s (messages, presence, snapshots) on one server and a 3-node cluster, with CPU per write per node',
  options: {
    durationS: { type: 'number', default: 10, help: 'seconds per path' },
    inFlight: { type: 'number', default: 512, help: 'message writes in flight' },
    channels: { type: 'number', default: 1000, help: 'channels the message writes go to' },
    bodyBytes: { type: 'number', default: 200, help: 'message body size' },
    shards: { type: 'string', default: '3', help: 'shard stream counts to write at once besides the single stream (comma separated; 1 or empty: none)' },
    paths: { type: 'string', default: 'stream,presence,snapshot', help: 'what to write: stream, subjects, presence, snapshot' },
    subjectCount: { type: 'number', default: 200000, help: 'subjects path (N): 2N writes to 100 channels, N to a channel each, N presence keys' },
    subjectsLateS: { type: 'number', default: 150, help: 'subjects path: seconds before a settled memory reading (past the 2-min duplicate window)' },
    presenceInFlight: { type: 'number', default: 1280, help: 'presence puts in flight (20 gateways x storage.presenceWritesInFlight 64)' },
    presenceKeys: { type: 'number', default: 100000, help: 'distinct presence keys' },
    snapshotKib: { type: 'number', default: 800, help: 'size of one bulk presence record (50,000 connections x 16 bytes)' },
    replicas: { type: 'string', default: '1,3', help: 'shapes: 1 = one server, 3 = 3-node cluster' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts.all();
    const binary = ctx.opts.optStr('natsBinary');
    const sampler = new ResourceSampler([]).start();
    const runs: PathResult[] = [];
    for (const r of String(o.replicas).split(',').map(Number)) await runShape(r === 1 ? 1 : 3, o, binary, runs);
    const window = { ...sampler.stop(), otherPct: NaN };
    const table: TableRow[] = runs.map((r) => {
      const leader = Object.values(r.leaders)[0];
      const cpu = Object.entries(r.nodeCpuUsPerWrite)
        .map(([n, us]) => `${n}${r.streams === 1 && n === leader && r.replicas > 1 ? ' (leader)' : ''} ${us}`)
        .join(', ');
      return [`R${r.replicas} ${r.path}`, `${fmtInt(r.perSec)}/s acked (${r.failed} failed); CPU us per write: ${cpu}; writer ${r.clientCpuUsPerWrite}`];
    });
    const failed = runs.reduce((n, r) => n + r.failed, 0);
    const subjectRows: TableRow[] = subjectState.map((s) => [
      `R${s.replicas} live heap, bytes`,
      `per stored message ${JSON.stringify(s.liveHeapBytes.perStoredMessage)}, per write in the duplicate window ${JSON.stringify(s.liveHeapBytes.perWriteInDuplicateWindow)}, per channel ${JSON.stringify(s.liveHeapBytes.perSubject)}, per presence key ${JSON.stringify(s.liveHeapBytes.perPresenceKey)}`,
    ]);
    table.push(...subjectRows);
    return { params: o, results: { runs, subjectState }, window, windows: [{ label: 'cluster-writes', window }], table, problems: failed > 0 ? [`${failed} writes failed: ${runs.find((r) => r.firstError)?.firstError}`] : [] };
  },
};
