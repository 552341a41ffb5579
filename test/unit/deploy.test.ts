import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { renderEnvExample } from '../../deploy/gen-env-example.ts';
import { envVariables, loadConfig } from '../../src/config/load.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { MESSAGE_STREAM } from '../../streams/index.ts';

/**
 * Static checks of the deployment files (no Docker engine needed): docker-compose.yml,
 * deploy/Dockerfile, deploy/nats/nats-server.conf, deploy/jetpull.env.example and the
 * build script they rely on. They catch drift between these files and the code:
 * unknown settings, a CMD that no longer matches the build output, a stale env example.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string): string => readFileSync(join(ROOT, rel), 'utf8');

const SHORTCUTS = ['NATS_URL', 'PUSH_SERVERS', 'PUSH_PORT', 'PUSH_HOSTNAME', 'PUSH_PUB_PORT', 'PUSH_PUB_HOSTNAME'];
const KNOWN_ENV = new Set([...envVariables().map(([name]) => name), ...SHORTCUTS]);

// ---------------------------------------------------------------------------------
// A reader for the YAML subset compose files use: block mappings and sequences, plain
// and quoted scalars, flow sequences of scalars, comments. Anything else (anchors,
// multi-line strings, flow mappings) is rejected, so the checks below never run on
// a misread file.

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  no: number;
  indent: number;
  text: string;
}

function stripComment(s: string): string {
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

function scalar(raw: string, no: number): Yaml {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s.startsWith('"')) {
    assert.ok(s.endsWith('"') && s.length > 1, `line ${no}: unterminated double-quoted string`);
    return JSON.parse(s) as string;
  }
  if (s.startsWith("'")) {
    assert.ok(s.endsWith("'") && s.length > 1, `line ${no}: unterminated single-quoted string`);
    return s.slice(1, -1).replaceAll("''", "'");
  }
  if (s.startsWith('[')) {
    assert.ok(s.endsWith(']'), `line ${no}: flow sequence must end on its line`);
    const items: string[] = [];
    let cur = '';
    let quote: string | undefined;
    for (const c of s.slice(1, -1)) {
      if (quote) {
        if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === ',') {
        items.push(cur);
        cur = '';
        continue;
      }
      cur += c;
    }
    if (cur.trim() !== '') items.push(cur);
    return items.map((item) => scalar(item, no));
  }
  assert.ok(!/^[{&*!|>]/.test(s), `line ${no}: unsupported YAML construct: ${s}`);
  if (s === 'true' || s === 'false') return s === 'true';
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Splits `key: value`; the key may be quoted. */
function splitKey(text: string, no: number): [string, string] | undefined {
  const m = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s:'"][^:]*?):(?:\s+(.*))?$/.exec(text);
  if (!m) return undefined;
  const key = scalar(m[1]!, no);
  assert.equal(typeof key, 'string', `line ${no}: mapping keys must be strings`);
  return [key as string, m[2] ?? ''];
}

function parseYamlSubset(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    assert.ok(!raw.includes('\t'), `line ${i + 1}: tab character (YAML indents with spaces)`);
    const body = stripComment(raw);
    if (body.trim() === '' || body.trim() === '---') return;
    const indent = body.length - body.trimStart().length;
    lines.push({ no: i + 1, indent, text: body.trim() });
  });
  let pos = 0;

  const block = (indent: number): Yaml => {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    return first.text.startsWith('- ') || first.text === '-' ? sequence(first.indent) : mapping(first.indent);
  };

  const mapping = (indent: number, out: { [key: string]: Yaml } = {}): Yaml => {
    while (pos < lines.length && lines[pos]!.indent === indent && !lines[pos]!.text.startsWith('-')) {
      const line = lines[pos]!;
      const kv = splitKey(line.text, line.no);
      assert.ok(kv, `line ${line.no}: expected "key: value", got: ${line.text}`);
      const [key, rest] = kv;
      assert.ok(!(key in out), `line ${line.no}: duplicate key ${key}`);
      pos++;
      if (rest === '') {
        const next = lines[pos];
        // A sequence may sit at the same indentation as its key.
        if (next && (next.indent > indent || (next.indent === indent && next.text.startsWith('-')))) {
          out[key] = block(next.indent);
        } else {
          out[key] = null;
        }
      } else {
        out[key] = scalar(rest, line.no);
      }
    }
    const stray = lines[pos];
    assert.ok(!stray || stray.indent < indent || stray.text.startsWith('-'), `line ${stray?.no}: bad indentation`);
    return out;
  };

  const sequence = (indent: number): Yaml => {
    const out: Yaml[] = [];
    while (pos < lines.length && lines[pos]!.indent === indent && lines[pos]!.text.startsWith('-')) {
      const line = lines[pos]!;
      const rest = line.text.slice(1).trimStart();
      const itemIndent = indent + (line.text.length - rest.length);
      if (rest === '') {
        pos++;
        out.push(block(indent + 1));
      } else if (splitKey(rest, line.no) && !/^["'[]/.test(rest)) {
        // "- key: value" starts a mapping whose further keys align with `key`.
        lines[pos] = { no: line.no, indent: itemIndent, text: rest };
        out.push(mapping(itemIndent));
      } else {
        pos++;
        out.push(scalar(rest, line.no));
      }
    }
    return out;
  };

  const doc = block(0);
  assert.equal(pos, lines.length, `line ${lines[pos]?.no}: unexpected content`);
  return doc;
}

function obj(value: Yaml | undefined, what: string): { [key: string]: Yaml } {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what} must be a mapping`);
  return value;
}

function list(value: Yaml | undefined, what: string): Yaml[] {
  assert.ok(Array.isArray(value), `${what} must be a sequence`);
  return value;
}

/** Compose `${NAME:-default}` / `${NAME-default}` resolved as if NAME were unset. */
function interpolateDefaults(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, _name, def: string | undefined) => def ?? '');
}

// ---------------------------------------------------------------------------------
// Dockerfile reader: instructions with continuation lines joined, split into stages.

interface Instruction {
  op: string;
  args: string;
}

function dockerfileStages(text: string): Array<{ from: string; name?: string; body: Instruction[] }> {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Array<{ from: string; name?: string; body: Instruction[] }> = [];
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile: cannot read instruction: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      assert.ok(f, `Dockerfile: cannot read FROM ${args}`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), body: [] });
    } else {
      assert.ok(stages.length > 0, `Dockerfile: ${op} before the first FROM`);
      stages[stages.length - 1]!.body.push({ op, args });
    }
  }
  return stages;
}

function execForm(args: string, what: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    assert.fail(`${what} must use the exec (JSON array) form, got: ${args}`);
  }
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `${what}: not an array of strings`);
  return parsed as string[];
}

// ---------------------------------------------------------------------------------
// Build output layout, from tsconfig.build.json and what it extends.

function tsconfigOptions(file: string): { outDir: string; rootDir: string; include: string[] } {
  const cfg = JSON.parse(read(file)) as { extends?: string; compilerOptions?: Record<string, unknown>; include?: string[] };
  const base = cfg.extends ? tsconfigOptions(posix.join(posix.dirname(file), cfg.extends)) : { outDir: '', rootDir: '.', include: [] };
  const opts = cfg.compilerOptions ?? {};
  return {
    outDir: typeof opts.outDir === 'string' ? opts.outDir : base.outDir,
    rootDir: typeof opts.rootDir === 'string' ? opts.rootDir : base.rootDir,
    include: cfg.include ?? base.include,
  };
}

function builtPath(source: string): string {
  const { outDir, rootDir } = tsconfigOptions('tsconfig.build.json');
  assert.ok(outDir, 'tsconfig.build.json (or what it extends) must set outDir');
  return posix.join(outDir, posix.relative(rootDir, source)).replace(/\.ts$/, '.js');
}

/** NATS configuration sizes: 8MB = 8 MiB (checked against nats-server's /varz). */
function natsSize(value: string): number {
  const m = /^"?(\d+)\s*([KMGT]?)i?B?"?$/i.exec(value.trim());
  assert.ok(m, `cannot read NATS size ${value}`);
  const power = { '': 0, K: 1, M: 2, G: 3, T: 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * 1024 ** power;
}

function natsSetting(conf: string, key: string): string | undefined {
  const m = new RegExp(`^\\s*${key}\\s*[:=]\\s*([^#\\n]+)`, 'm').exec(conf);
  return m?.[1]!.trim();
}

const defaults = ConfigSchema.parse({});

// ---------------------------------------------------------------------------------

describe('deploy - docker-compose.yml', () => {
  const text = read('docker-compose.yml');
  const doc = obj(parseYamlSubset(text), 'docker-compose.yml');
  const services = obj(doc.services, 'services');
  const nats = obj(services.nats, 'services.nats');
  const app = obj(services.jetpull, 'services.jetpull');
  const env = obj(app.environment, 'services.jetpull.environment');
  const resolvedEnv = Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, interpolateDefaults(String(v ?? ''))]),
  );

  it('has only known top-level keys and the nats and jetpull services', () => {
    for (const key of Object.keys(doc)) {
      assert.ok(['services', 'volumes', 'networks', 'configs', 'secrets', 'name'].includes(key) || key.startsWith('x-'), `unknown top-level key ${key}`);
    }
    assert.ok(!('version' in doc), 'the top-level "version" key is obsolete in the Compose Specification');
  });

  it('runs nats with the deploy config, a named data volume and a JetStream healthcheck', () => {
    assert.match(String(nats.image), /^nats:2\.\d+/);
    assert.deepEqual(list(nats.command, 'nats.command'), ['-c', '/etc/nats/nats-server.conf']);
    const volumes = list(nats.volumes, 'nats.volumes').map(String);
    assert.ok(volumes.includes('./deploy/nats/nats-server.conf:/etc/nats/nats-server.conf:ro'), 'config mounted read-only');
    assert.ok(existsSync(join(ROOT, 'deploy/nats/nats-server.conf')));
    const data = volumes.find((v) => v.split(':')[1] === '/data');
    assert.ok(data, 'a volume for /data');
    assert.ok(Object.keys(obj(doc.volumes, 'volumes')).includes(data.split(':')[0]!), 'the /data volume is a declared named volume');
    const health = list(obj(nats.healthcheck, 'nats.healthcheck').test, 'nats.healthcheck.test').map(String);
    assert.equal(health[0], 'CMD');
    assert.ok(health.some((a) => a.includes(':8222/healthz')), 'healthcheck asks the monitoring port');
    for (const port of list(nats.ports ?? [], 'nats.ports').map(String)) {
      assert.match(port, /^127\.0\.0\.1:/, `nats port ${port} must stay on the loopback interface`);
    }
  });

  it('builds jetpull from deploy/Dockerfile and starts it once nats is healthy', () => {
    const build = obj(app.build, 'jetpull.build');
    assert.equal(build.context, '.');
    assert.equal(build.dockerfile, 'deploy/Dockerfile');
    assert.ok(existsSync(join(ROOT, String(build.context), String(build.dockerfile))));
    const dependsOn = obj(app.depends_on, 'jetpull.depends_on');
    assert.equal(obj(dependsOn.nats, 'depends_on.nats').condition, 'service_healthy');
    assert.equal(app.restart, 'unless-stopped');
    assert.ok(app.stop_grace_period, 'stop_grace_period leaves time to drain');
  });

  it('sets only known settings, and they load into the intended listeners', () => {
    for (const name of Object.keys(env)) assert.ok(KNOWN_ENV.has(name), `${name} is not a jetpull setting`);
    assert.equal(resolvedEnv.NATS_URL, 'nats://nats:4222');
    assert.match(String(env.PUSH_SECURITY__KEY), /^\$\{[A-Z_]+:-[^}]*\}$/, 'the key comes from the environment, not the file');
    const { config } = loadConfig({ argv: [], env: resolvedEnv });
    assert.equal(config.nats.url, 'nats://nats:4222');
    assert.equal(config.servers.length, 2);
    const [main, trusted] = config.servers;
    assert.deepEqual([main!.hostname, main!.port, Object.keys(main!.routes).sort()], ['0.0.0.0', 8010, ['rest', 'sub']]);
    assert.deepEqual([trusted!.hostname, trusted!.port, Object.keys(trusted!.routes).sort()], ['0.0.0.0', 8895, ['pub', 'stat']]);

    const ports = list(app.ports, 'jetpull.ports').map(String);
    const published = new Map(ports.map((p) => [Number(p.split(':').at(-1)), p]));
    assert.ok(published.has(main!.port), 'the browser port is published');
    assert.match(published.get(trusted!.port) ?? '', /^127\.0\.0\.1:/, 'the publish port stays off public interfaces');
  });

  it('matches the NATS config: client port, payload size, store size', () => {
    const conf = read('deploy/nats/nats-server.conf');
    assert.equal(natsSetting(conf, 'port'), new URL(String(resolvedEnv.NATS_URL)).port);
    const maxPayload = natsSize(natsSetting(conf, 'max_payload') ?? '1MB');
    // The message stream accepts maxPayloadBytes + 4096 (headers); NATS must too.
    assert.ok(maxPayload >= defaults.limits.maxPayloadBytes + 4096, `max_payload ${maxPayload} is too small`);
    assert.equal(natsSetting(conf, 'store_dir'), '/data', 'store_dir is the mounted volume');
    const maxStreamBytes = Number(resolvedEnv.PUSH_STORAGE__STREAM_MAX_BYTES ?? -1);
    const maxFileStore = natsSize(natsSetting(conf, 'max_file_store') ?? '0');
    assert.ok(maxStreamBytes > 0 && maxStreamBytes < maxFileStore, 'the stream is bounded below max_file_store');
  });
});

describe('deploy - Dockerfile', () => {
  const stages = dockerfileStages(read('deploy/Dockerfile'));
  const final = stages.at(-1)!;
  const ops = (op: string): Instruction[] => final.body.filter((i) => i.op === op);

  it('runs the final stage on node 20 as a non-root user in production mode', () => {
    assert.ok(stages.length >= 2, 'multi-stage build');
    assert.match(final.from, /^node:20[-.]/);
    const user = ops('USER').at(-1);
    assert.ok(user, 'the final stage sets USER');
    assert.ok(!['root', '0', '0:0', 'root:root'].includes(user.args), `USER ${user.args} is root`);
    assert.ok(ops('ENV').some((i) => /\bNODE_ENV[= ]production\b/.test(i.args)), 'ENV NODE_ENV=production');
    const exposed = ops('EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
    assert.ok(exposed.includes(8010) && exposed.includes(8895), `EXPOSE 8010 8895, got ${exposed.join(' ')}`);
  });

  it('starts the entry file that tsconfig.build.json emits', () => {
    const cmd = execForm(ops('CMD').at(-1)?.args ?? '', 'CMD');
    assert.equal(cmd[0], 'node');
    assert.ok(cmd.includes('--enable-source-maps'));
    const entry = cmd.at(-1)!;
    assert.equal(entry, builtPath('src/main.ts'));
    const pkg = JSON.parse(read('package.json')) as { main?: string; scripts: Record<string, string> };
    assert.equal(pkg.main, entry, 'package.json "main"');
    assert.ok(pkg.scripts['start:dist']?.endsWith(` ${entry}`), 'package.json "start:dist"');
    const copied = ops('COPY').map((i) => i.args);
    assert.ok(copied.some((a) => /--from=\S+/.test(a) && a.includes('dist')), 'dist/ is copied from the build stage');
    assert.ok(copied.some((a) => /(^|\s)package\.json(\s|$)/.test(a)), 'package.json ("type": "module") is copied');
  });

  it('has a HEALTHCHECK that needs no curl', () => {
    const hc = ops('HEALTHCHECK').at(-1);
    assert.ok(hc, 'the final stage has a HEALTHCHECK');
    const m = /^(?:--\S+\s+)*CMD\s+(.*)$/.exec(hc.args);
    assert.ok(m, `HEALTHCHECK ${hc.args}`);
    const argv = execForm(m[1]!, 'HEALTHCHECK CMD');
    assert.equal(argv[0], 'node');
    const script = argv[argv.indexOf('-e') + 1];
    assert.ok(script, 'node -e <script>');
    assert.doesNotThrow(() => new Script(script), 'the healthcheck script is valid JavaScript');
    assert.match(script, /PUSH_PORT/, 'the healthcheck follows PUSH_PORT');
  });

  it('compiles every directory tsconfig.build.json includes, and the context does not exclude them', () => {
    const build = stages.find((s) => s.body.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)));
    assert.ok(build, 'a stage runs npm run build');
    const copied = build.body.filter((i) => i.op === 'COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#'));
    const needed = [...tsconfigOptions('tsconfig.build.json').include, 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
    for (const path of needed) {
      assert.ok(copied.some((c) => c.replace(/\/$/, '') === path), `the build stage copies ${path}`);
      assert.ok(!ignored.includes(path), `.dockerignore excludes ${path}`);
    }
    for (const path of ['node_modules', 'dist', '.git', 'data']) assert.ok(ignored.includes(path), `.dockerignore lists ${path}`);
  });
});

describe('deploy - build script', () => {
  it('copies push.proto next to the compiled protobuf module', () => {
    const build = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build ?? '';
    assert.match(build, /\btsc -p tsconfig\.build\.json\b/);
    assert.ok(existsSync(join(ROOT, 'src/wire/push.proto')));
    const target = posix.join(posix.dirname(builtPath('src/wire/protobuf.ts')), 'push.proto');
    assert.equal(target, 'dist/src/wire/push.proto');
    assert.ok(build.includes('src/wire/push.proto') && build.includes(target), `build script copies push.proto to ${target}: ${build}`);
  });
});

describe('deploy - environment variables', () => {
  it('names only known settings in docker-compose.yml and deploy/', () => {
    const files = ['docker-compose.yml', 'deploy/Dockerfile', 'deploy/nats/nats-server.conf', 'deploy/jetpull.env.example'];
    const compose = read('docker-compose.yml');
    // Compose's own ${VAR} interpolation variables are set on the host, not in jetpull.
    const composeVars = new Set([...compose.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!));
    for (const v of composeVars) assert.ok(!KNOWN_ENV.has(v), `${v} is a jetpull setting; do not reuse it as a compose variable`);
    for (const file of files) {
      const text = read(file);
      for (const [name] of text.matchAll(/\b(?:PUSH_[A-Z0-9_]*[A-Z0-9]|NATS_URL)\b/g)) {
        const allowed = KNOWN_ENV.has(name) || name === MESSAGE_STREAM || (file === 'docker-compose.yml' && composeVars.has(name));
        assert.ok(allowed, `${file}: ${name} is not a jetpull setting`);
      }
    }
  });

  it('deploy/jetpull.env.example is the current output of deploy/gen-env-example.ts', () => {
    const committed = read('deploy/jetpull.env.example');
    assert.ok(
      committed === renderEnvExample(),
      'deploy/jetpull.env.example is stale: run npx tsx deploy/gen-env-example.ts > deploy/jetpull.env.example',
    );
  });

  it('deploy/jetpull.env.example lists every setting, holds no secret, and its examples load', () => {
    const text = renderEnvExample();
    const assigned = new Map([...text.matchAll(/^#([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const name of KNOWN_ENV) assert.ok(assigned.has(name), `${name} is missing`);
    for (const secret of ['PUSH_SECURITY__KEY', 'PUSH_NATS__PASSWORD', 'PUSH_NATS__TOKEN']) assert.equal(assigned.get(secret), '', `${secret} has a value`);
    const env = Object.fromEntries([...assigned].filter(([, v]) => v !== ''));
    const { config } = loadConfig({ argv: [], env });
    assert.equal(config.servers.length, 2, 'the PUSH_SERVERS example defines two listeners');
    assert.deepEqual({ ...config, servers: [], processUniqueId: '' }, { ...defaults, servers: [], processUniqueId: '' }, 'the listed values are the defaults');
  });
});
