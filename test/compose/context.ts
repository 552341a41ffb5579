import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Compose } from './compose.ts';
import type { Ran } from './exec.ts';
import { publish } from './publisher.ts';
import { loadSettings, type Settings } from './settings.ts';
import type { Subscriber } from './subscribers.ts';

/** What the checks of one run share: settings, the stack, and figures one check measures and a later one judges. */
export interface SuiteContext {
  readonly settings: Settings;
  readonly compose: Compose;
  /** The first `up` of the run (it builds the jetpull image). */
  firstUp?: Ran;
  /** Restart counts of the jetpull containers right after the first `up`. */
  firstUpRestarts?: Record<string, number>;
  /** Figures of the leader kill, judged against the tighter bounds of the known defect. */
  leaderKill?: { recoveryMs: number; maxLatenessMs: number; electionMs: number; afterElectionMs: number; latenessAfterElectionMs: number };
  /** Every request sent through nginx while a gateway stopped and was stopped. */
  probes: Probe[];
}

export interface Probe {
  what: string;
  at: number;
  ms: number;
  status: number;
}

export function createContext(): SuiteContext {
  const settings = loadSettings();
  return { settings, compose: new Compose(settings.compose, process.env), probes: [] };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes to every subscriber until each has received one message: from then on each
 * has a mid to resume from, so nothing published later can be missed. Long polls give
 * no other sign that the server holds them.
 */
export async function prime(publishUrl: string, subs: Subscriber[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const channels = subs.map((s) => s.user.priv);
  while (subs.some((s) => s.mid === undefined)) {
    if (Date.now() > deadline) throw new Error(`${subs.filter((s) => s.mid === undefined).length} subscriber(s) got nothing within ${timeoutMs} ms`);
    await publish(publishUrl, channels);
    await sleep(300);
  }
}

/** The services that run the image built from deploy/Dockerfile, from the resolved compose model. */
export async function jetpullServices(compose: Compose): Promise<string[]> {
  const { services } = await compose.config();
  const built = new Set(Object.values(services).filter((s) => s.build).map((s) => s.image));
  return Object.entries(services)
    .filter(([, s]) => built.has(s.image))
    .map(([name]) => name)
    .sort();
}

/** jetpull's own /metrics, read inside the container (the admin port is not published). */
export async function metricValue(compose: Compose, service: string, metric: string): Promise<number> {
  const script =
    "require('http').get({host:'127.0.0.1',port:Number(process.env.PUSH_ADMIN__PORT||9180),path:'/metrics'}," +
    "(r)=>{let b='';r.on('data',(c)=>b+=c);r.on('end',()=>process.stdout.write(b))}).on('error',(e)=>{console.error(String(e));process.exit(1)})";
  const r = await compose.exec(service, ['node', '-e', script]);
  if (r.code !== 0) throw new Error(`${service} /metrics: ${r.stderr.trim()}`);
  let sum = 0;
  for (const line of r.stdout.split('\n')) {
    const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

/** Every service's log so far, into the run directory (run.sh keeps it when the run fails). */
export async function saveStackLogs(ctx: SuiteContext, file: string): Promise<void> {
  const runDir = ctx.settings.compose.runDir;
  if (!runDir) return;
  writeFileSync(join(runDir, file), (await ctx.compose.run(['logs', '--no-color', '--timestamps'])).stdout);
}
