import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { declarations, MESSAGE_STREAM } from '../../streams/index.ts';
import { cpuByNode, cpuSince, startNatsNodes } from '../lib/nats-nodes.ts';
import { ResourceSampler } from '../lib/proc.ts';
import type { ScenarioOutcome, TableRow } from '../lib/report.ts';
import type { Scenario } from '../lib/scenario.ts';
import { fmtInt, log, nowMs, randomHexId, round } from '../lib/util.ts';
import { timedWrites } from '../lib/write-loop.ts';

/**
 * What a gateway's catch-up costs (src/gateway/hub.ts catchUp: after a NATS
 * disconnect or a stream leader change it scans the stream from the last sequence it
 * had seen, keeping the messages of the channels it holds). The stream is filled with
 * N messages over K channels; then G gateways (each its own NATS connection) scan it
 * from the start at once with jetpull's stream reader, each keeping 1/20 of the
 * channels (one gateway of 20). Reported per scanned message: the scanning process's
 * CPU and every node's, and the scan rate, on one server and on a 3-node cluster.
 */

interface ScanRun {
  replicas: number;
  gateways: number;
  messages: number;
  kept: number;
  /** Slowest scan's wall time. */
  seconds: number;
  messagesPerSecPerScan: number;
  clientUsPerMessage: number;
  nodeUsPerMessage: Record<string, number>;
  leader: string | undefined;
}

const logger = createRootLogger({ level: 'warn', processUniqueId: 'bench', version: 'bench' });

export const catchUpScenario: Scenario = {
  name: 'catch-up',
  summary: 'cost of the whole-stream scans gateways make after a NATS disconnect or leader change, per scanned message',
  options: {
    messages: { type: 'number', default: 200000, help: 'messages in the stream (N)' },
    channels: { type: 'number', default: 10000, help: 'channels they are spread over (K)' },
    gateways: { type: 'string', default: '1,4', help: 'concurrent scans (G), comma separated' },
    replicas: { type: 'string', default: '1,3', help: 'shapes: 1 = one server, 3 = 3-node cluster' },
  },
  async run(ctx): Promise<ScenarioOutcome> {
    const o = ctx.opts;
    const [N, K] = [o.num('messages'), o.num('channels')];
    const sampler = new ResourceSampler([]).start();
    const runs: ScanRun[] = [];
    const fills: Record<string, unknown>[] = [];
    for (const replicas of o.str('replicas').split(',').map(Number)) {
      const nodes = await startNatsNodes(replicas === 1 ? 1 : 3, o.optStr('natsBinary'), 'bench-catchup');
      const cfg = parseConfig({ nats: { url: nodes.url }, storage: { streamReplicas: replicas } });
      const opened: NatsAccess[] = [];
      try {
        const writer = await NatsAccess.open(cfg.nats, nodes.url, logger);
        opened.push(writer);
        await writer.ensure(declarations({ ...cfg.storage, replicas, maxBytes: -1, maxPayloadBytes: cfg.limits.maxPayloadBytes, perMessageTtl: writer.serverAtLeast(2, 11), atomicBatch: false }), logger, { updateExisting: true });
        const keys = Array.from({ length: K }, () => `priv.${randomHexId()}`);
        const body = Buffer.from(JSON.stringify({ module_id: 'im', command: 'message', params: { text: 'x'.repeat(140) } }));
        const appender = writer.appender();
        const fill = await timedWrites(nodes, 600_000, 256, (i) => appender.append(keys[i % K]!, body, `f${i}`, { expirySec: 3600 }, 10_000), N);
        appender.close();
        const stored = (await writer.streamReader(MESSAGE_STREAM, { replicas }).position()).lastSeq;
        fills.push({ replicas, stored, seconds: fill.seconds, nodeCpuUsPerWrite: fill.nodeCpuUsPerWrite });
        log(`R${replicas}: ${fmtInt(stored)} messages stored`);
        const held = new Set(keys.filter((_, i) => i % 20 === 0));
        for (const G of o.str('gateways').split(',').map(Number)) {
          const gws = await Promise.all(Array.from({ length: G }, () => NatsAccess.open(cfg.nats, nodes.url, logger)));
          opened.push(...gws);
          const readers = gws.map((g) => g.streamReader(MESSAGE_STREAM, { replicas }));
          const leader = (await readers[0]!.position()).leader;
          const cpu0 = cpuByNode(nodes);
          const c0 = process.cpuUsage();
          const t0 = nowMs();
          const kept = await Promise.all(
            readers.map(async (r) => {
              let k = 0;
              await r.scan(0, (key) => held.has(key), () => k++);
              return { k, ms: nowMs() - t0 };
            }),
          );
          const c = process.cpuUsage(c0);
          const nodeCpu = cpuSince(nodes, cpu0);
          const scanned = G * stored;
          const seconds = Math.max(...kept.map((x) => x.ms)) / 1000;
          const run: ScanRun = {
            replicas,
            gateways: G,
            messages: stored,
            kept: kept[0]!.k,
            seconds: round(seconds, 2),
            messagesPerSecPerScan: Math.round(stored / seconds),
            clientUsPerMessage: round((c.user + c.system) / scanned, 2),
            nodeUsPerMessage: Object.fromEntries(Object.entries(nodeCpu).map(([k, v]) => [k, round((v * 1000) / scanned, 2)])),
            leader,
          };
          runs.push(run);
          log(`R${replicas}, ${G} scan(s) at once: ${run.seconds} s, ${fmtInt(run.messagesPerSecPerScan)} msgs/s each, kept ${fmtInt(run.kept)}; per scanned message: scanner ${run.clientUsPerMessage} us, nodes ${JSON.stringify(run.nodeUsPerMessage)} (leader ${leader})`);
          for (const g of gws) await g.close();
          opened.splice(opened.length - G, G);
        }
      } finally {
        for (const a of opened) await a.close().catch(() => undefined);
        await nodes.stop();
      }
    }
    const window = { ...sampler.stop(), otherPct: NaN };
    const table: TableRow[] = runs.map((r) => [
      `R${r.replicas}, ${r.gateways} scan(s) at once`,
      `${fmtInt(r.messages)} msgs in ${r.seconds} s (${fmtInt(r.messagesPerSecPerScan)}/s per scan); CPU us per scanned message: scanner ${r.clientUsPerMessage}, ${Object.entries(r.nodeUsPerMessage).map(([k, v]) => `${k}${k === r.leader ? ' (leader)' : ''} ${v}`).join(', ')}`,
    ]);
    return { params: o.all(), results: { fills, runs }, window, windows: [{ label: 'catch-up', window }], table, problems: [] };
  },
};
