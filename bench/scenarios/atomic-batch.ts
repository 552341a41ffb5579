import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import type { BatchCopy } from '../../src/nats/atomic-batch.ts';
import type { JetStreamAppender } from '../../src/nats/jetstream-appender.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { declarations } from '../../streams/index.ts';
import { startTestCluster, startTestNats } from '../../test/helpers/nats-server.ts';
import { BenchSetupError } from '../lib/env.ts';
import { ResourceSampler } from '../lib/proc.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import type { Scenario } from '../lib/scenario.ts';
import { fmtInt, log, nowMs, randomHexId } from '../lib/util.ts';

/**
 * The two ways jetpull stores a publish to several receivers, with its own appender
 * against the message stream as streams/ declares it (allow_atomic forced on): one
 * copy at a time (the first alone, then the others together) and one atomic batch.
 * P publishes of C copies at once, per path, for R rounds, on one server (R1) and on
 * a 3-node cluster (R3). JETPULL_TEST_NATS_BINARY picks the nats-server (2.12+).
 */

interface PathRun {
  replicas: number;
  path: 'per-copy' | 'batch';
  round: number;
  ms: number;
  publishesPerSec: number;
  failed: number;
}

async function perCopy(appender: JetStreamAppender, keys: string[], body: Uint8Array, pubId: string): Promise<void> {
  const meta = { expirySec: 60, pubId };
  const first = await appender.append(keys[0]!, body, `${pubId}.0`, meta, 10_000);
  await Promise.all(keys.slice(1).map((k, i) => appender.append(k, body, `${pubId}.${i + 1}`, { ...meta, firstSeq: first.seq, firstKey: keys[0] }, 10_000)));
}

async function batch(appender: JetStreamAppender, keys: string[], body: Uint8Array, pubId: string): Promise<void> {
  const copies: BatchCopy[] = keys.map((key, i) => ({ key, msgId: `${pubId}.${i}`, meta: { expirySec: 60, pubId, ...(i === 0 ? {} : { firstOffset: i, firstKey: keys[0] }) } }));
  const ack = await appender.appendBatch(copies, body, 10_000);
  if (!ack.stored) throw new Error(`batch refused: ${ack.detail}`);
}

export const atomicBatchScenario: Scenario = {
  name: 'atomic-batch',
  summary: 'publishes to several receivers stored one copy at a time vs as one atomic batch, on R1 and R3 streams',
  options: {
    publishes: { type: 'number', default: 200, help: 'publishes written at once per path (P)' },
    copies: { type: 'number', default: 10, help: 'receivers of each publish (C)' },
    rounds: { type: 'number', default: 3, help: 'rounds per path and stream (R)' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const [P, C, rounds] = [o.num('publishes'), o.num('copies'), o.num('rounds')];
    const body = Buffer.from(JSON.stringify({ module_id: 'bench', command: 'm', params: { pad: 'x'.repeat(150) } }));
    const sampler = new ResourceSampler([]).start();
    const runs: PathRun[] = [];
    for (const replicas of [1, 3]) {
      const servers = replicas === 1 ? await startTestNats() : await startTestCluster(3, 'bench-batch');
      const cfg = parseConfig({ nats: { url: servers.url }, storage: { streamReplicas: replicas } });
      const access = await NatsAccess.open(cfg.nats, servers.url, createRootLogger({ level: 'warn', processUniqueId: 'bench', version: 'bench' }));
      const appender = access.appender();
      try {
        if (!access.serverAtLeast(2, 12)) throw new BenchSetupError(`atomic-batch needs nats-server 2.12 or newer (this is ${access.link.nc.info?.version}); set JETPULL_TEST_NATS_BINARY`);
        const decl = declarations({ ...cfg.storage, replicas, maxBytes: -1, maxPayloadBytes: cfg.limits.maxPayloadBytes, perMessageTtl: true, atomicBatch: true });
        await access.ensure(decl, createRootLogger({ level: 'warn', processUniqueId: 'bench', version: 'bench' }), { updateExisting: true });
        for (let round = 1; round <= rounds; round++) {
          for (const [path, write] of [['per-copy', perCopy], ['batch', batch]] as const) {
            const t0 = nowMs();
            const results = await Promise.allSettled(
              Array.from({ length: P }, () => write(appender, Array.from({ length: C }, () => `priv.${randomHexId()}`), body, randomHexId())),
            );
            const ms = nowMs() - t0;
            const run = { replicas, path, round, ms: Math.round(ms), publishesPerSec: Math.round((P / ms) * 1000), failed: results.filter((r) => r.status === 'rejected').length };
            log(`R${replicas} round ${round} ${path}: ${P} x ${C} copies in ${run.ms} ms, ${fmtInt(run.publishesPerSec)} publishes/s, failed ${run.failed}`);
            runs.push(run);
          }
        }
      } finally {
        appender.close();
        await access.close();
        await servers.stop();
      }
    }
    // The nats-server processes come and go with each stream shape; they are not sampled.
    const window = { ...sampler.stop(), otherPct: NaN };
    const median = (replicas: number, path: string): number => {
      const v = runs.filter((r) => r.replicas === replicas && r.path === path).map((r) => r.publishesPerSec).sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)] ?? 0;
    };
    const table: TableRow[] = [1, 3].flatMap((replicas): TableRow[] => [
      [`R${replicas} one copy at a time`, `${fmtInt(median(replicas, 'per-copy'))} publishes/s (median of ${rounds})`],
      [`R${replicas} atomic batch`, `${fmtInt(median(replicas, 'batch'))} publishes/s (median of ${rounds})`],
    ]);
    const failed = runs.reduce((n, r) => n + r.failed, 0);
    return { params: o.all(), results: { runs }, window, windows: [{ label: 'atomic-batch', window }], table, problems: failed > 0 ? [`${failed} writes failed`] : [] };
  },
};
