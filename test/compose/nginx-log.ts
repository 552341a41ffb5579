import type { Compose } from './compose.ts';
import type { Probe } from './context.ts';

/**
 * When nginx's run-time resolution dropped an upstream name (docker's DNS no longer
 * knows a stopped container): its error log line "<name> could not be resolved",
 * stamped by the engine.
 */
export async function resolverDrops(compose: Compose, name: RegExp): Promise<number[]> {
  const r = await compose.run(['logs', '--no-color', '--no-log-prefix', '--timestamps', 'nginx'], { timeoutMs: 30_000 });
  const out: number[] = [];
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) {
    const m = /^(\S+Z) .* (\S+) could not be resolved/.exec(line);
    if (m && name.test(m[2]!)) out.push(new Date(m[1]!).getTime());
  }
  return out;
}

/**
 * A request nginx had sent to a stopped gateway's address when, during that connect
 * attempt, its resolver dropped the name: nginx then answers 502/504 instead of trying
 * the next server (the server list changed under the request). Fast by construction:
 * it ends with the connect timeout.
 */
export function droppedDuringAttempt(p: Probe, drops: number[], connectTimeoutMs: number): boolean {
  if (p.status !== 502 && p.status !== 504) return false;
  if (p.ms > connectTimeoutMs + 300) return false;
  return drops.some((t) => t >= p.at - 50 && t <= p.at + p.ms + 50);
}
