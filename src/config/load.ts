import { z } from 'zod';
import { crossFieldIssues } from './cross-field.ts';
import { issuesFromZod, unwrap, type ConfigIssue } from './issues.ts';
import { ADMIN_PORT_OFFSET, ConfigSchema, DEFAULT_ROUTES, type Config, type ConfigInput } from './schema.ts';
import { ConfigFileError, readPushConfigFile } from './push-config-file.ts';

/**
 * Turns the environment and an optional `--config <file>` into a frozen Config.
 * Precedence: schema defaults < config file < environment. This is the only module
 * that reads `process.env`.
 */

export class ConfigError extends Error {
  /**
   * `problems`: one line each, as start-up prints them; `issues`: the same problems
   * with their path and fix (settings only, not the command line or the environment).
   */
  constructor(readonly problems: string[], readonly issues: readonly ConfigIssue[] = [], options?: ErrorOptions) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Where the file came from, and what in it was ignored; for the start-up log. */
  file?: { path: string; ignoredKeys: string[] };
}

export interface LoadOptions {
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Settings given on the command line (`jetpull serve --role`): they win over the environment. */
  overrides?: Record<string, unknown>;
}

const ENV_PREFIX = 'PUSH_';

/** Shortcuts that do not follow the PUSH_<SECTION>__<FIELD> pattern. */
const SHORTCUTS = ['NATS_URL', 'PUSH_SERVERS', 'PUSH_PORT', 'PUSH_HOSTNAME', 'PUSH_PUB_PORT', 'PUSH_PUB_HOSTNAME'];

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const argv = options.argv ?? process.argv.slice(2);
  const env = options.env ?? process.env;
  const problems: string[] = [];

  const filePath = configFileArg(argv, problems);
  let input: Record<string, unknown> = {};
  let file: LoadedConfig['file'];
  if (filePath !== undefined) {
    try {
      const read = readPushConfigFile(filePath);
      input = read.input as Record<string, unknown>;
      file = { path: filePath, ignoredKeys: read.ignoredKeys };
    } catch (err) {
      throw new ConfigError([(err as Error).message], err instanceof ConfigFileError ? err.issues : [], { cause: err });
    }
  }

  const fromEnv = envInput(env, problems);
  const merged = deepMerge(deepMerge(input, fromEnv), options.overrides ?? {});
  const result = validateConfigInput(merged);
  if ('config' in result && problems.length === 0) return { config: result.config, ...(file ? { file } : {}) };
  throw new ConfigError([...problems, ...('problems' in result ? result.problems : [])], 'issues' in result ? result.issues : []);
}

export type Validation = { config: Config } | { problems: string[]; issues: ConfigIssue[] };

/** The schema, then the rules across settings; the frozen Config or every problem found. */
export function validateConfigInput(input: unknown): Validation {
  const parsed = ConfigSchema.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    return { problems: parsed.error.issues.map((i) => describeIssue(i)), issues: issuesFromZod(parsed.error, ConfigSchema) };
  }
  const issues = crossFieldIssues(parsed.data);
  if (issues.length > 0) return { problems: issues.map((i) => `${i.path.join('.')}: ${i.message}`), issues };
  return { config: deepFreeze(withDerivedDefaults(parsed.data)) };
}

/** Environment variable the cluster primary sets for each worker it forks. */
export const WORKER_INDEX_ENV = 'JETPULL_WORKER_INDEX';

/** The index a cluster primary gave this worker (0 outside a cluster). */
export function workerIndex(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const n = Number(env[WORKER_INDEX_ENV] ?? '0');
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** Parses an input object directly (tests and embedding); same rules as loadConfig. */
export function parseConfig(input: ConfigInput): Config {
  const result = validateConfigInput(input);
  if ('problems' in result) throw new ConfigError(result.problems, result.issues);
  return result.config;
}

/**
 * Defaults that follow from the listeners, so that several instances on one host
 * (BitrixVM runs one per config file) each get their own admin port and local store.
 */
function withDerivedDefaults(parsed: z.infer<typeof ConfigSchema>): Config {
  const first = parsed.servers[0]!.port;
  const derivedAdmin = first === 0 ? 0 : first + ADMIN_PORT_OFFSET <= 65_535 ? first + ADMIN_PORT_OFFSET : 0;
  return {
    ...parsed,
    admin: { ...parsed.admin, port: parsed.admin.port ?? derivedAdmin },
    nats: { ...parsed.nats, localDataDir: parsed.nats.localDataDir ?? (first === 8010 ? 'data/nats' : `data/nats-${first}`) },
  };
}

function configFileArg(argv: readonly string[], problems: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config') {
      const value = argv[i + 1];
      if (value === undefined) problems.push('--config: a file path is required');
      return value;
    }
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
    problems.push(`${arg}: unknown argument (only --config <file> is accepted)`);
  }
  return undefined;
}

/** Every leaf of the schema except `servers`, as [envName, path]. */
export function envVariables(): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [];
  const walk = (schema: z.ZodType, path: string[]): void => {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
        if (path.length === 0 && key === 'servers') continue;
        walk(child, [...path, key]);
      }
      return;
    }
    out.push([ENV_PREFIX + path.map(upperSnake).join('__'), path]);
  };
  walk(ConfigSchema, []);
  return out;
}

function upperSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function envInput(env: Readonly<Record<string, string | undefined>>, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = new Map(envVariables());
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    const path = known.get(name);
    if (path) {
      setPath(out, path, value);
    } else if (name.startsWith(ENV_PREFIX) && !SHORTCUTS.includes(name)) {
      problems.push(`${name}: unknown setting (see deploy/jetpull.env.example for the list)`);
    }
  }
  const natsUrl = env.NATS_URL;
  if (natsUrl) setPath(out, ['nats', 'url'], natsUrl);

  if (env.PUSH_SERVERS) {
    try {
      out.servers = JSON.parse(env.PUSH_SERVERS);
    } catch {
      problems.push('PUSH_SERVERS: must be a JSON array of listeners');
    }
  } else if (env.PUSH_PORT || env.PUSH_HOSTNAME || env.PUSH_PUB_PORT) {
    const split = Boolean(env.PUSH_PUB_PORT);
    const main = {
      port: env.PUSH_PORT ?? '8010',
      hostname: env.PUSH_HOSTNAME ?? '127.0.0.1',
      routes: split ? { sub: DEFAULT_ROUTES.sub, rest: DEFAULT_ROUTES.rest } : { ...DEFAULT_ROUTES },
    };
    const servers: unknown[] = [main];
    if (split) {
      servers.push({
        name: 'trusted',
        port: env.PUSH_PUB_PORT,
        hostname: env.PUSH_PUB_HOSTNAME ?? '127.0.0.1',
        routes: { pub: DEFAULT_ROUTES.pub, stat: DEFAULT_ROUTES.stat, api: DEFAULT_ROUTES.api },
      });
    }
    out.servers = servers;
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  const env = path[0] === 'servers' ? 'PUSH_SERVERS' : ENV_PREFIX + path.map(upperSnake).join('__');
  return `${path.join('.') || '(root)'} (env ${env}): ${issue.message}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
