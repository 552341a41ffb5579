export type OptValue = number | string | boolean | undefined;

export interface OptSpec {
  type: 'number' | 'string' | 'boolean';
  default?: number | string | boolean;
  help: string;
}

export type OptSpecs = Record<string, OptSpec>;

/** Options every scenario takes. Scenario specs override entries (e.g. the default of clients). */
export const COMMON_OPTIONS: OptSpecs = {
  clients: { type: 'number', default: 5000, help: 'connections (C)' },
  connectConcurrency: { type: 'number', default: 256, help: 'connection attempts in flight while connecting' },
  connectTimeoutS: { type: 'number', default: 15, help: 'time allowed for one connection handshake' },
  sourceAddresses: { type: 'number', default: 4, help: 'loopback source addresses 127.0.0.2… to spread connections over (more if C needs them)' },
  bodyBytes: { type: 'number', default: 200, help: 'published body size in bytes' },
  timeoutS: { type: 'number', default: 900, help: 'hard limit for the whole run; the run is aborted after it' },
  url: { type: 'string', help: 'target a running jetpull (http://127.0.0.1:8010) instead of starting one' },
  nats: { type: 'string', help: 'NATS URL of the running deployment (publish --path nats)' },
  key: { type: 'string', help: 'security key of the running deployment (default: the key the benchmark starts jetpull with)' },
  serverPids: { type: 'string', help: 'pids of an external deployment to sample: <jetpull>[,<nats-server>]' },
  coalesceMs: { type: 'number', help: 'PUSH_GATEWAY__COALESCE_WINDOW_MS for the jetpull child (default: the server default, 0: adaptive; 400: Push server 2.0 batching)' },
  serverEnv: { type: 'string', help: 'extra settings for the jetpull child, comma separated: PUSH_WORKERS=2,PUSH_GATEWAY__MAX_OUTBOX_BYTES=8388608' },
  logLevel: { type: 'string', default: 'warn', help: 'PUSH_LOG__LEVEL of the jetpull child' },
  runtime: { type: 'string', default: 'dist', help: 'how the jetpull child runs: dist (node dist/src/main.js, built first when src/ is newer, as in production) or tsx (node --import tsx src/main.ts)' },
  serverLog: { type: 'string', help: 'file for the jetpull child\'s output (default: a temporary file, kept only if it logged warnings or errors)' },
  serverNodeArgs: { type: 'string', help: 'extra node flags for the jetpull child, space separated: "--cpu-prof --cpu-prof-dir=/tmp/prof" (profiles), "--heapsnapshot-signal=SIGUSR2"' },
  out: { type: 'string', help: 'also write the JSON line to this file' },
  natsBinary: { type: 'string', default: 'nats-server', help: 'the nats-server the benchmark starts (a name on PATH or a path: $(scripts/nats-server-current.sh) for the current release)' },
};

export class Options {
  constructor(
    private readonly values: Record<string, OptValue>,
    readonly specs: OptSpecs,
  ) {}

  num(name: string): number {
    const v = this.values[name];
    if (typeof v !== 'number') throw new Error(`option --${kebab(name)} is required (a number)`);
    return v;
  }

  optNum(name: string): number | undefined {
    const v = this.values[name];
    return typeof v === 'number' ? v : undefined;
  }

  str(name: string): string {
    const v = this.values[name];
    if (typeof v !== 'string') throw new Error(`option --${kebab(name)} is required`);
    return v;
  }

  optStr(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  bool(name: string): boolean {
    return this.values[name] === true;
  }

  /** The values that were set (defaults included), for the report's params. */
  all(): Record<string, OptValue> {
    const out: Record<string, OptValue> = {};
    for (const [k, v] of Object.entries(this.values)) if (v !== undefined) out[k] = v;
    return out;
  }
}

export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Parses `--name value`, `--name=value`, `--flag`, `--no-flag`. Unknown options are errors. */
export function parseOptions(argv: readonly string[], specs: OptSpecs): Options {
  const values: Record<string, OptValue> = {};
  for (const [k, s] of Object.entries(specs)) values[k] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let key = camel(name);
    let negated = false;
    if (!(key in specs) && name.startsWith('no-') && camel(name.slice(3)) in specs) {
      key = camel(name.slice(3));
      negated = true;
    }
    const spec = specs[key];
    if (spec === undefined) throw new Error(`unknown option --${name}; known: ${Object.keys(specs).map((k) => `--${kebab(k)}`).join(' ')}`);
    if (spec.type === 'boolean') {
      values[key] = negated ? false : value === undefined ? true : value !== 'false' && value !== '0';
      continue;
    }
    if (negated) throw new Error(`--no-${name.slice(3)} is only for flags`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    if (spec.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`--${name}: "${value}" is not a number`);
      values[key] = n;
    } else {
      values[key] = value;
    }
  }
  return new Options(values, specs);
}

export function usage(specs: OptSpecs): string {
  return Object.entries(specs)
    .map(([k, s]) => {
      const flag = s.type === 'boolean' ? `--[no-]${kebab(k)}` : `--${kebab(k)} <${s.type === 'number' ? 'n' : 'value'}>`;
      const def = s.default === undefined ? '' : ` (default ${String(s.default)})`;
      return `    ${flag.padEnd(34)} ${s.help}${def}`;
    })
    .join('\n');
}
