import { cpuByNode, cpuSince, type NatsNodes } from './nats-nodes.ts';
import { nowMs, round } from './util.ts';

/** What one timed write loop did, and what it cost, per node and in this process. */
export interface WriteRun {
  acked: number;
  failed: number;
  firstError?: string;
  seconds: number;
  perSec: number;
  /** CPU milliseconds each node used during the loop. */
  nodeCpuMs: Record<string, number>;
  /** This process's CPU milliseconds (the writer: the NATS client, the appender). */
  clientCpuMs: number;
  /** CPU microseconds per acknowledged write, per node and in the writer. */
  nodeCpuUsPerWrite: Record<string, number>;
  clientCpuUsPerWrite: number;
}

/**
 * Calls `write(i)` with `inFlight` writes outstanding until `durationMs` has passed
 * (or `maxWrites` were issued), and counts what was acknowledged. CPU of every node is read from /proc before and
 * after, so the per-write figures are counts of CPU time, not throughput guesses.
 */
export async function timedWrites(
  nodes: NatsNodes,
  durationMs: number,
  inFlight: number,
  write: (i: number) => Promise<unknown>,
  maxWrites = Number.POSITIVE_INFINITY,
): Promise<WriteRun> {
  let acked = 0;
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const cpu0 = cpuByNode(nodes);
  const client0 = process.cpuUsage();
  const t0 = nowMs();
  const end = t0 + durationMs;
  const worker = async (): Promise<void> => {
    while (nowMs() < end && next < maxWrites) {
      try {
        await write(next++);
        acked++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (nowMs() - t0) / 1000;
  const nodeCpuMs = cpuSince(nodes, cpu0);
  const c = process.cpuUsage(client0);
  const clientCpuMs = (c.user + c.system) / 1000;
  const per = (ms: number): number => (acked > 0 ? round((ms * 1000) / acked, 1) : NaN);
  return {
    acked,
    failed,
    ...(firstError === undefined ? {} : { firstError }),
    seconds: round(seconds, 2),
    perSec: Math.round(acked / seconds),
    nodeCpuMs: Object.fromEntries(Object.entries(nodeCpuMs).map(([k, v]) => [k, Math.round(v)])),
    clientCpuMs: Math.round(clientCpuMs),
    nodeCpuUsPerWrite: Object.fromEntries(Object.entries(nodeCpuMs).map(([k, v]) => [k, per(v)])),
    clientCpuUsPerWrite: per(clientCpuMs),
  };
}
