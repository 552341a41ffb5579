import type { OptSpecs, Options } from './cli.ts';
import { startDeployment, type Deployment } from './deploy.ts';
import { sourceAddresses } from './env.ts';
import type { ScenarioOutcome } from './report.ts';

export interface ScenarioContext {
  scenario: string;
  opts: Options;
  /** Hard deadline of the whole run (nowMs clock). */
  deadline: number;
}

export interface Scenario {
  name: string;
  summary: string;
  options: OptSpecs;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}

/** The peer push server measured side by side (unicast, fanout). */
export const NCHAN_OPTIONS: OptSpecs = {
  nchan: { type: 'boolean', default: true, help: 'run the same load against nginx + nchan in the same run (skipped with a note when nginx-light and libnginx-mod-nchan are not installed; --no-nchan skips it)' },
  nchanWorkers: { type: 'number', default: 1, help: 'nginx worker processes for nchan (jetpull runs as one process)' },
};

/** jetpull (and nats-server) as the options ask: started here, or the external one. */
export function deploymentFor(ctx: ScenarioContext, env: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<Deployment> {
  const o = ctx.opts;
  const coalesce = o.optNum('coalesceMs');
  const extra = parseServerEnv(o.optStr('serverEnv'));
  return startDeployment({
    scenario: ctx.scenario,
    url: o.optStr('url'),
    nats: o.optStr('nats'),
    key: o.optStr('key'),
    serverPids: o.optStr('serverPids'),
    logLevel: o.str('logLevel'),
    serverLog: o.optStr('serverLog'),
    runtime: o.str('runtime') === 'tsx' ? 'tsx' : 'dist',
    nodeArgs: [...nodeArgs, ...(o.optStr('serverNodeArgs') ?? '').split(' ').filter((a) => a !== '')],
    natsBinary: o.optStr('natsBinary'),
    env: { ...(coalesce === undefined ? {} : { PUSH_GATEWAY__COALESCE_WINDOW_MS: String(coalesce) }), ...env, ...extra },
  });
}

/** `--server-env A=1,B=2`: only PUSH_* settings are passed on. */
export function parseServerEnv(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq).trim();
    if (!/^PUSH_[A-Z0-9_]+$/.test(name)) throw new Error(`--server-env: "${pair}" is not PUSH_<SETTING>=<value>`);
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

/** The coalescing window the server uses (what we started it with; the default for an external one). */
export function coalesceWindowMs(ctx: ScenarioContext): number {
  const fromEnv = parseServerEnv(ctx.opts.optStr('serverEnv')).PUSH_GATEWAY__COALESCE_WINDOW_MS;
  return ctx.opts.optNum('coalesceMs') ?? (fromEnv === undefined ? 0 : Number(fromEnv));
}

export function addressesFor(ctx: ScenarioContext, connections: number, skip = 0): string[] {
  return sourceAddresses(connections, ctx.opts.num('sourceAddresses'), skip);
}

/** A private subscription token `priv.sig` and its 32-hex id. */
export function privateToken(dep: Deployment, id: string): string {
  return `${id}.${dep.sign(id)}`;
}
