import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { delimiter, dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { renderEnvExample } from '../../deploy/gen-env-example.ts';
import { envVariables, loadConfig } from '../../src/config/load.ts';
import { ConfigSchema, type Config } from '../../src/config/schema.ts';
import { MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET } from '../../streams/index.ts';

/**
 * Static checks of the deployment files (no Docker engine needed): docker-compose.yml
 * (3 NATS nodes, gateways, publisher, nginx, Prometheus, Grafana), deploy/compose.single.yml,
 * deploy/Dockerfile, the NATS, nginx, Prometheus and Grafana configs in deploy/,
 * deploy/jetpull.env.example and the build script they rely on. They catch drift between
 * these files and the code: unknown settings, a jetpull service missing from the load
 * balancer or the scrape targets, a dashboard querying a metric that does not exist, a
 * published internal port, a CMD that no longer matches the build output, a stale env
 * example. The NATS configs are also checked by `nats-server -t` (required on the machine).
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

const defaults = ConfigSchema.parse({});

// ---------------------------------------------------------------------------------
// NATS configuration reader: `key: value`, `key = value`, `key value`, blocks `{}`,
// arrays `[]`, quoted strings, comments, and `include <file>` (relative to the file).
// Enough for the configs in deploy/nats; `nats-server -t` checks the rest.

type NatsValue = string | NatsValue[] | { [key: string]: NatsValue };
type NatsBlock = { [key: string]: NatsValue };

function parseNatsConf(file: string): NatsBlock {
  const raw = readFileSync(file, 'utf8');
  // Comments (# or //) to the end of the line, outside quotes.
  const src = raw
    .split('\n')
    .map((line) => {
      let quote: string | undefined;
      for (let i = 0; i < line.length; i++) {
        const c = line[i]!;
        if (quote) {
          if (c === quote) quote = undefined;
        } else if (c === '"' || c === "'") {
          quote = c;
        } else if ((c === '#' || (c === '/' && line[i + 1] === '/')) && (i === 0 || /\s/.test(line[i - 1]!))) {
          // At a token boundary only: nats-route://host:port is a value.
          return line.slice(0, i);
        }
      }
      return line;
    })
    .join('\n');
  let i = 0;
  const where = (): string => `${file}:${src.slice(0, i).split('\n').length}`;
  const skip = (newlines: boolean): void => {
    while (i < src.length && (/[ \t\r]/.test(src[i]!) || (newlines && /[\n,;]/.test(src[i]!)))) i++;
  };
  const quoted = (): string => {
    const q = src[i]!;
    const end = src.indexOf(q, i + 1);
    assert.ok(end > i, `${where()}: unterminated string`);
    const s = src.slice(i + 1, end);
    i = end + 1;
    return s;
  };
  const value = (): NatsValue => {
    const c = src[i];
    if (c === '{') {
      i++;
      return block(true);
    }
    if (c === '[') {
      i++;
      const items: NatsValue[] = [];
      for (;;) {
        skip(true);
        assert.ok(i < src.length, `${where()}: unterminated array`);
        if (src[i] === ']') {
          i++;
          return items;
        }
        items.push(src[i] === '{' || src[i] === '[' ? value() : src[i] === '"' || src[i] === "'" ? quoted() : bare(/[\n,\]]/));
      }
    }
    if (c === '"' || c === "'") return quoted();
    return bare(/[\n,;}]/);
  };
  const bare = (stop: RegExp): string => {
    const start = i;
    while (i < src.length && !stop.test(src[i]!)) i++;
    const s = src.slice(start, i).trim();
    assert.ok(s !== '', `${where()}: missing value`);
    return s;
  };
  const block = (nested: boolean): NatsBlock => {
    const out: NatsBlock = {};
    for (;;) {
      skip(true);
      if (i >= src.length) {
        assert.ok(!nested, `${where()}: unterminated block`);
        return out;
      }
      if (src[i] === '}') {
        assert.ok(nested, `${where()}: unexpected }`);
        i++;
        return out;
      }
      const key = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i))?.[0];
      assert.ok(key, `${where()}: expected a key`);
      i += key.length;
      skip(false);
      if (src[i] === ':' || src[i] === '=') i++;
      skip(false);
      if (key === 'include') {
        const path = src[i] === '"' || src[i] === "'" ? quoted() : bare(/[\n;]/);
        for (const [k, v] of Object.entries(parseNatsConf(join(dirname(file), path)))) {
          assert.ok(!(k in out), `${where()}: ${k} set twice (include ${path})`);
          out[k] = v;
        }
        continue;
      }
      assert.ok(!(key in out), `${where()}: ${key} set twice`);
      out[key] = value();
    }
  };
  return block(false);
}

function natsStr(conf: NatsBlock, path: string): string | undefined {
  let node: NatsValue | undefined = conf;
  for (const key of path.split('.')) {
    if (node === undefined || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = node[key];
  }
  assert.ok(node === undefined || typeof node === 'string', `${path} is not a plain value`);
  return node;
}

/** nats-server from PATH or /usr/sbin (Debian's place); the tests need it anyway. */
function natsServerBinary(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  assert.fail('nats-server is not installed (apt-get install -y nats-server): it checks the NATS configs');
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

// ---------------------------------------------------------------------------------
// nginx configuration reader: directives with arguments, blocks, quoted strings, comments.

interface NginxDirective {
  name: string;
  args: string[];
  block?: NginxDirective[];
}

function parseNginxConf(text: string): NginxDirective[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push(c);
      i++;
    } else if (c === '"' || c === "'") {
      let s = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        s += text[i];
        i++;
      }
      assert.ok(i < text.length, 'nginx.conf: unterminated string');
      i++;
      tokens.push(`\u0000${s}`); // marks a quoted token, so "{" stays a word
    } else {
      const start = i;
      while (i < text.length && !/[\s{};#"']/.test(text[i]!)) i++;
      tokens.push(text.slice(start, i));
    }
  }
  let pos = 0;
  const word = (t: string): string => (t.startsWith('\u0000') ? t.slice(1) : t);
  const parse = (nested: boolean): NginxDirective[] => {
    const out: NginxDirective[] = [];
    while (pos < tokens.length) {
      if (tokens[pos] === '}') {
        assert.ok(nested, 'nginx.conf: unexpected }');
        pos++;
        return out;
      }
      const name = word(tokens[pos++]!);
      const args: string[] = [];
      while (pos < tokens.length && tokens[pos] !== ';' && tokens[pos] !== '{' && tokens[pos] !== '}') args.push(word(tokens[pos++]!));
      assert.ok(pos < tokens.length && tokens[pos] !== '}', `nginx.conf: ${name} is not terminated`);
      if (tokens[pos++] === '{') out.push({ name, args, block: parse(true) });
      else out.push({ name, args });
    }
    assert.ok(!nested, 'nginx.conf: unterminated block');
    return out;
  };
  return parse(false);
}

const directives = (block: NginxDirective[] | undefined, name: string): NginxDirective[] => (block ?? []).filter((d) => d.name === name);
const directive = (block: NginxDirective[] | undefined, name: string): NginxDirective | undefined => directives(block, name).at(-1);

/** nginx time: 43800, 43800s, 12h, 1m30s. */
function nginxSeconds(value: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };
  let total = 0;
  const re = /(\d+)(ms|s|m|h|d|w|M|y)?/gy;
  let m: RegExpExecArray | null;
  let seen = 0;
  while ((m = re.exec(value)) !== null) {
    total += Number(m[1]) * units[m[2] ?? 's']!;
    seen = re.lastIndex;
  }
  assert.equal(seen, value.length, `cannot read nginx time ${value}`);
  return total;
}

/** nginx size: 2m, 512k, 1048576. */
function nginxBytes(value: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value);
  assert.ok(m, `cannot read nginx size ${value}`);
  return Number(m[1]) * 1024 ** ({ '': 0, k: 1, m: 2, g: 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']);
}

// ---------------------------------------------------------------------------------
// Compose helpers.

type Mapping = { [key: string]: Yaml };

interface ComposeFile {
  rel: string;
  dir: string;
  doc: Mapping;
  services: Record<string, Mapping>;
}

function composeFile(rel: string): ComposeFile {
  const doc = obj(parseYamlSubset(read(rel)), rel);
  const services = Object.fromEntries(Object.entries(obj(doc.services, `${rel}: services`)).map(([name, s]) => [name, obj(s, `${rel}: services.${name}`)]));
  return { rel, dir: posix.dirname(rel), doc, services };
}

/** A path in the compose file, relative to the repository root. */
const hostPath = (c: ComposeFile, p: string): string => posix.normalize(posix.join(c.dir, p));

function serviceEnv(service: Mapping, what: string): Record<string, string> {
  const env = obj(service.environment ?? {}, `${what}.environment`);
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolateDefaults(String(v ?? ''))]));
}

interface PortMapping {
  hostIp?: string;
  host?: number;
  container: number;
  raw: string;
}

/** Short syntax only: [HOST_IP:][HOST:]CONTAINER[/PROTO]. */
function portMappings(service: Mapping, what: string): PortMapping[] {
  return list(service.ports ?? [], `${what}.ports`).map((p) => {
    assert.ok(typeof p === 'string' || typeof p === 'number', `${what}.ports: use the short "host:container" form`);
    const raw = String(p);
    const parts = raw.replace(/\/(tcp|udp)$/, '').split(':');
    assert.ok(parts.length >= 1 && parts.length <= 3 && parts.every((x) => x !== ''), `${what}: cannot read port ${raw}`);
    const container = Number(parts.at(-1));
    const host = parts.length >= 2 ? Number(parts.at(-2)) : undefined;
    return { raw, container, ...(host !== undefined ? { host } : {}), ...(parts.length === 3 ? { hostIp: parts[0] } : {}) };
  });
}

interface VolumeMount {
  source: string;
  target: string;
  readOnly: boolean;
  named: boolean;
}

function volumeMounts(service: Mapping, what: string): VolumeMount[] {
  return list(service.volumes ?? [], `${what}.volumes`).map((v) => {
    assert.equal(typeof v, 'string', `${what}.volumes: use the short "source:target[:ro]" form`);
    const [source, target, mode] = String(v).split(':');
    assert.ok(source && target, `${what}: cannot read volume ${String(v)}`);
    return { source, target, readOnly: mode === 'ro', named: !/^[./~]/.test(source) };
  });
}

/** The repository file a container path of this service comes from, via its bind mounts. */
function mountedFile(c: ComposeFile, service: Mapping, what: string, containerPath: string): string {
  for (const m of volumeMounts(service, what)) {
    if (m.named) continue;
    if (containerPath === m.target) return hostPath(c, m.source);
    if (containerPath.startsWith(`${m.target}/`)) return hostPath(c, posix.join(m.source, containerPath.slice(m.target.length + 1)));
  }
  assert.fail(`${what}: nothing mounted at ${containerPath}`);
}

/** Compose durations: 30s, 1m30s, 500ms. */
function composeMs(value: Yaml | undefined, what: string): number {
  const s = String(value ?? '');
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let seen = 0;
  const re = /(\d+(?:\.\d+)?)(us|ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * units[m[2]!]!;
    seen = re.lastIndex;
  }
  assert.ok(s !== '' && seen === s.length, `${what}: cannot read duration ${s}`);
  return total;
}

function healthcheckArgv(service: Mapping, what: string): string[] {
  const hc = obj(service.healthcheck, `${what}.healthcheck`);
  assert.notEqual(hc.disable, true, `${what}: healthcheck disabled`);
  const test = hc.test;
  const argv = typeof test === 'string' ? ['CMD-SHELL', test] : list(test, `${what}.healthcheck.test`).map(String);
  assert.ok(['CMD', 'CMD-SHELL'].includes(argv[0]!), `${what}: healthcheck.test starts with CMD or CMD-SHELL`);
  return argv;
}

/** The jetpull services: the one built from deploy/Dockerfile and those reusing its image. */
function jetpullServices(c: ComposeFile): Array<[string, Mapping]> {
  const built = Object.entries(c.services).filter(([, s]) => s.build !== undefined && s.build !== null);
  assert.equal(built.length, 1, `${c.rel}: exactly one service builds the jetpull image`);
  const [name, svc] = built[0]!;
  const build = obj(svc.build, `${name}.build`);
  assert.equal(posix.normalize(posix.join(hostPath(c, String(build.context)), String(build.dockerfile))), 'deploy/Dockerfile', `${name} builds deploy/Dockerfile`);
  assert.ok(typeof svc.image === 'string' && svc.image !== '', `${name}: "image" names the built image so other services can reuse it`);
  return Object.entries(c.services).filter(([, s]) => s.image === svc.image);
}

function jetpullConfig(name: string, svc: Mapping): Config {
  const env = serviceEnv(svc, name);
  for (const key of Object.keys(env)) assert.ok(KNOWN_ENV.has(key), `${name}: ${key} is not a jetpull setting`);
  return loadConfig({ argv: [], env }).config;
}

/** The listener of a config that serves a route, as host:port for a proxy. */
function listenerPort(config: Config, route: 'sub' | 'pub'): number | undefined {
  return config.servers.find((s) => s.routes[route] !== undefined)?.port;
}

/** Time jetpull allows itself after the drain window before exiting anyway (src/main.ts). */
function shutdownGraceMs(): number {
  const m = /const SHUTDOWN_GRACE_MS = ([\d_]+);/.exec(read('src/main.ts'));
  assert.ok(m, 'src/main.ts defines SHUTDOWN_GRACE_MS');
  return Number(m[1]!.replaceAll('_', ''));
}

// The healthcheck of the jetpull services, run against a stand-in admin listener.
async function runHealthcheck(script: string, status: number | undefined): Promise<number> {
  if (status === undefined) {
    // Nothing listening: take a free port and release it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    return (await run(process.execPath, ['-e', script], { ...process.env, PUSH_ADMIN__PORT: String(port) })).code;
  }
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(req.url === '/readyz' ? status : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    const { code } = await run(process.execPath, ['-e', script], { ...process.env, PUSH_ADMIN__PORT: String(port) });
    assert.deepEqual(paths, ['/readyz'], 'the healthcheck asks /readyz');
    return code;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

// ---------------------------------------------------------------------------------
// Metric names, from src/metrics/metrics.ts and prom-client's default metrics.

async function knownMetrics(): Promise<{ names: Set<string>; labels: Set<string> }> {
  const src = read('src/metrics/metrics.ts');
  const names = new Set<string>();
  const histogram = (name: string): void => {
    for (const suffix of ['_bucket', '_count', '_sum']) names.add(name + suffix);
  };
  for (const m of src.matchAll(/'(jetpull_[a-z0-9_]+)'/g)) names.add(m[1]!);
  for (const m of src.matchAll(/new Histogram\(\{\s*name:\s*'(jetpull_[a-z0-9_]+)'/g)) histogram(m[1]!);
  const prefix = /collectDefaultMetrics\(\{[^}]*prefix:\s*'([a-z_]+)'/.exec(src)?.[1];
  assert.equal(prefix, 'jetpull_', 'src/metrics/metrics.ts collects the default metrics with the jetpull_ prefix');
  const labels = new Set(['role', 'process', 'le']); // default labels set in src/app.ts; le for buckets
  for (const m of src.matchAll(/labelNames:\s*\[([^\]]*)\]/g)) for (const l of m[1]!.matchAll(/'([a-z_]+)'/g)) labels.add(l[1]!);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  for (const metric of await registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') histogram(metric.name);
    for (const v of metric.values) for (const l of Object.keys(v.labels)) labels.add(l);
  }
  registry.clear();
  return { names, labels };
}

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** Metric names and label names a PromQL expression mentions. */
function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels: string[] = [];
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  e = e.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
    for (const l of inner.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(l[1]!);
    return ' ';
  });
  e = e.replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _kw, inner: string) => {
    labels.push(...inner.split(',').map((s) => s.trim()).filter(Boolean));
    return ' ';
  });
  const metrics: string[] = [];
  for (const m of e.matchAll(/(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || PROMQL_KEYWORDS.has(m[1]!.toLowerCase())) continue; // a function call or a keyword
    metrics.push(m[1]!);
  }
  return { metrics, labels };
}

interface Panel {
  title?: string;
  type?: string;
  datasource?: { uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

function allPanels(panels: Panel[] | undefined): Panel[] {
  return (panels ?? []).flatMap((p) => [p, ...allPanels(p.panels)]);
}

// ---------------------------------------------------------------------------------

describe('deploy - docker-compose.yml', () => {
  const c = composeFile('docker-compose.yml');
  const { doc, services } = c;
  const jetpull = jetpullServices(c);
  const configs = new Map(jetpull.map(([name, svc]) => [name, jetpullConfig(name, svc)]));
  const natsNodes = Object.entries(services).filter(([, s]) => /^nats:/.test(String(s.image)));
  const natsConf = new Map(
    natsNodes.map(([name, svc]) => {
      const cmd = list(svc.command, `${name}.command`).map(String);
      assert.equal(cmd[0], '-c', `${name}: command is -c <config>`);
      return [name, parseNatsConf(join(ROOT, mountedFile(c, svc, name, cmd[1]!)))];
    }),
  );
  const byRole = (role: Config['role']): string[] => [...configs].filter(([, cfg]) => cfg.role === role).map(([name]) => name);

  it('has only known top-level keys, declared named volumes, pinned images, a healthcheck and a restart policy everywhere', () => {
    for (const key of Object.keys(doc)) {
      assert.ok(['services', 'volumes', 'networks', 'configs', 'secrets', 'name'].includes(key) || key.startsWith('x-'), `unknown top-level key ${key}`);
    }
    assert.ok(!('version' in doc), 'the top-level "version" key is obsolete in the Compose Specification');
    const declared = Object.keys(obj(doc.volumes, 'volumes'));
    for (const [name, svc] of Object.entries(services)) {
      assert.match(String(svc.image), /^[\w./-]+:[\w.-]+$/, `${name}: image with a tag`);
      assert.ok(!String(svc.image).endsWith(':latest'), `${name}: pin the image`);
      healthcheckArgv(svc, name);
      assert.equal(svc.restart, 'unless-stopped', `${name}: restart: unless-stopped`);
      for (const m of volumeMounts(svc, name)) {
        if (m.named) assert.ok(declared.includes(m.source), `${name}: volume ${m.source} is declared`);
        else assert.ok(existsSync(join(ROOT, hostPath(c, m.source))), `${name}: ${m.source} exists`);
      }
    }
  });

  it('runs a 3-node NATS cluster with JetStream, one named volume per node, and routes to the other nodes', () => {
    assert.equal(natsNodes.length, 3, 'three NATS nodes');
    const names = natsNodes.map(([name]) => name);
    const clusterNames = new Set<string>();
    const dataVolumes = new Set<string>();
    for (const [name, svc] of natsNodes) {
      assert.match(String(svc.image), /^nats:2\.\d+/);
      const conf = natsConf.get(name)!;
      assert.equal(natsStr(conf, 'server_name'), name, `${name}: server_name is the service name`);
      clusterNames.add(natsStr(conf, 'cluster.name') ?? '');
      const clusterPort = natsStr(conf, 'cluster.port') ?? '6222';
      const routes = conf.cluster && typeof conf.cluster === 'object' && !Array.isArray(conf.cluster) ? conf.cluster.routes : undefined;
      const hosts = list((routes ?? []) as Yaml, `${name}: cluster.routes`).map((r) => new URL(String(r)));
      assert.deepEqual(hosts.map((u) => u.hostname).sort(), names.filter((n) => n !== name).sort(), `${name} routes to the other nodes`);
      for (const u of hosts) assert.equal(u.port, clusterPort, `${name}: routes use the cluster port`);
      assert.ok(natsStr(conf, 'jetstream.store_dir'), `${name}: JetStream on with a store_dir`);
      const data = volumeMounts(svc, name).find((m) => m.target === natsStr(conf, 'jetstream.store_dir'));
      assert.ok(data?.named, `${name}: store_dir is on a named volume`);
      dataVolumes.add(data.source);
      const health = healthcheckArgv(svc, name);
      assert.equal(health[0], 'CMD');
      assert.ok(health.includes(`http://127.0.0.1:${natsStr(conf, 'http')}/healthz?js-enabled-only=true`), `${name}: healthcheck asks JetStream on the monitoring port`);
      assert.ok(composeMs(svc.stop_grace_period, name) >= 10_000, `${name}: stop_grace_period`);
    }
    assert.equal(clusterNames.size, 1, 'one cluster name on every node');
    assert.ok([...clusterNames][0], 'a cluster name');
    assert.equal(dataVolumes.size, 3, 'a data volume per node');
  });

  it('gives every node a payload limit above jetpull\'s and room for the stream below max_file_store', () => {
    for (const [name, conf] of natsConf) {
      for (const cfg of configs.values()) {
        const maxPayload = natsSize(natsStr(conf, 'max_payload') ?? '1MB');
        // The message stream accepts maxPayloadBytes + 4096 (headers); NATS must too.
        assert.ok(maxPayload >= cfg.limits.maxPayloadBytes + 4096, `${name}: max_payload ${maxPayload} is too small`);
        const maxFileStore = natsSize(natsStr(conf, 'jetstream.max_file_store') ?? '0');
        assert.ok(cfg.storage.streamMaxBytes > 0 && cfg.storage.streamMaxBytes < maxFileStore, `${name}: the stream is bounded below max_file_store`);
      }
    }
  });

  it('runs jetpull as two gateways and a publisher from one image, connected to all three nodes with 3 replicas', () => {
    assert.deepEqual(byRole('gateway').sort(), ['gateway1', 'gateway2']);
    assert.deepEqual(byRole('publisher').sort(), ['publisher1']);
    assert.deepEqual(byRole('all'), []);
    for (const [name, svc] of jetpull) {
      const env = serviceEnv(svc, name);
      const cfg = configs.get(name)!;
      const urls = String(env.NATS_URL).split(',').map((u) => new URL(u.trim()));
      assert.deepEqual(urls.map((u) => u.hostname).sort(), natsNodes.map(([n]) => n).sort(), `${name}: NATS_URL lists every node`);
      for (const u of urls) assert.equal(u.port, natsStr(natsConf.get(u.hostname)!, 'port'), `${name}: ${u.hostname}'s client port`);
      assert.equal(env.PUSH_STORAGE__STREAM_REPLICAS, '3');
      assert.equal(cfg.storage.streamReplicas, natsNodes.length, `${name}: one replica per node`);
      assert.match(String(obj(svc.environment, name).PUSH_SECURITY__KEY), /^\$\{[A-Z_]+:-[^}]+\}$/, `${name}: the key comes from the environment, with a default`);
      assert.equal(env.PUSH_ADMIN__HOSTNAME, '0.0.0.0', `${name}: admin listener reachable for Prometheus and the healthcheck`);
      assert.ok(cfg.admin.port > 0, `${name}: admin listener on`);
      assert.equal(cfg.processUniqueId, name, `${name}: a stable process id (the metrics' process label)`);
      for (const server of cfg.servers) assert.equal(server.hostname, '0.0.0.0', `${name}: listeners reachable from nginx`);
      const dependsOn = obj(svc.depends_on, `${name}.depends_on`);
      for (const [node] of natsNodes) assert.equal(obj(dependsOn[node], `${name}.depends_on.${node}`).condition, 'service_healthy');
      assert.equal(svc.init, true, `${name}: init: true`);
    }
    // Every process declares the stream and buckets at start: they must agree, and share the key.
    const [first, ...rest] = [...configs];
    for (const [name, cfg] of rest) {
      assert.deepEqual(cfg.storage, first![1].storage, `${name} and ${first![0]}: the same storage settings`);
      assert.deepEqual(cfg.limits, first![1].limits, `${name} and ${first![0]}: the same limits`);
      assert.deepEqual(cfg.security, first![1].security, `${name} and ${first![0]}: the same key`);
    }
  });

  it('serves subscriptions on the gateways and publishing on the publisher', () => {
    for (const name of byRole('gateway')) assert.ok(listenerPort(configs.get(name)!, 'sub'), `${name} has a listener with the sub route`);
    for (const name of byRole('publisher')) {
      const cfg = configs.get(name)!;
      assert.ok(listenerPort(cfg, 'pub'), `${name} has a listener with the pub route`);
      for (const server of cfg.servers) assert.equal(server.routes.sub, undefined, `${name}: no subscription route on a publisher`);
    }
  });

  it('checks readiness on the admin port with node (no curl in the image), and stops after the drain', async () => {
    const drainDeadline = Math.max(...[...configs.values()].map((cfg) => cfg.gateway.drainWindowMs)) + shutdownGraceMs();
    for (const [name, svc] of jetpull) {
      const argv = healthcheckArgv(svc, name);
      assert.deepEqual(argv.slice(0, 3), ['CMD', 'node', '-e'], `${name}: healthcheck is node -e <script>`);
      const script = argv[3]!;
      assert.doesNotThrow(() => new Script(script), `${name}: the healthcheck script is valid JavaScript`);
      assert.ok(script.includes(`||${configs.get(name)!.admin.port}`), `${name}: the healthcheck defaults to the admin port`);
      assert.ok(composeMs(svc.stop_grace_period, name) > drainDeadline, `${name}: stop_grace_period above drain window + shutdown grace (${drainDeadline} ms)`);
    }
    const script = healthcheckArgv(jetpull[0]![1], jetpull[0]![0])[3]!;
    assert.equal(await runHealthcheck(script, 200), 0, 'ready: healthy');
    assert.equal(await runHealthcheck(script, 503), 1, 'not ready (draining, NATS away): unhealthy');
    assert.equal(await runHealthcheck(script, undefined), 1, 'nothing listening: unhealthy');
  });

  it('publishes only nginx publicly; the publish port, tools and NATS monitoring on 127.0.0.1; never admin or NATS client ports', () => {
    const nginxSvc = services.nginx;
    assert.ok(nginxSvc, 'an nginx service');
    const internal = new Set<number>([9180, 4222, 6222]);
    for (const cfg of configs.values()) internal.add(cfg.admin.port);
    for (const conf of natsConf.values()) {
      internal.add(Number(natsStr(conf, 'port') ?? 4222));
      internal.add(Number(natsStr(conf, 'cluster.port') ?? 6222));
    }
    const publicPorts: PortMapping[] = [];
    for (const [name, svc] of Object.entries(services)) {
      for (const p of portMappings(svc, name)) {
        assert.ok(!internal.has(p.container) && !internal.has(p.host ?? -1), `${name}: ${p.raw} publishes an internal port`);
        if (p.hostIp === '127.0.0.1') continue;
        assert.equal(name, 'nginx', `${name}: ${p.raw} is published on every interface`);
        publicPorts.push(p);
      }
    }
    for (const [name, svc] of jetpull) assert.deepEqual(portMappings(svc, name), [], `${name}: reached through nginx only`);
    assert.equal(publicPorts.length, 1, 'one public port');
    const publish = portMappings(nginxSvc, 'nginx').filter((p) => p.container === 8895 || p.host === 8895);
    assert.ok(publish.length > 0, 'the publish port 8895 is published');
    for (const p of publish) assert.equal(p.hostIp, '127.0.0.1', `${p.raw}: the publish port stays off public interfaces`);
    for (const [name, port] of [['prometheus', 9090], ['grafana', 3000]] as const) {
      assert.ok(portMappings(services[name]!, name).some((p) => p.hostIp === '127.0.0.1' && p.container === port), `${name} on 127.0.0.1:${port}`);
    }
  });
});

describe('deploy - nginx', () => {
  const c = composeFile('docker-compose.yml');
  const svc = c.services.nginx!;
  const jetpull = jetpullServices(c);
  const configs = new Map(jetpull.map(([name, s]) => [name, jetpullConfig(name, s)]));
  const confFile = mountedFile(c, svc, 'nginx', '/etc/nginx/nginx.conf');
  const conf = parseNginxConf(read(confFile));
  const http = directive(conf, 'http')?.block;
  const upstreams = new Map(directives(http, 'upstream').map((u) => [u.args[0]!, u.block!]));
  const servers = directives(http, 'server').map((s) => ({
    block: s.block!,
    ports: directives(s.block, 'listen').map((l) => Number(/(\d+)$/.exec(l.args[0]!)?.[1])),
  }));
  const published = portMappings(svc, 'nginx');
  const publicServer = servers.find((s) => s.ports.some((p) => published.some((m) => m.container === p && m.hostIp === undefined)));
  const internalServer = servers.find((s) => s.ports.some((p) => published.some((m) => m.container === p && m.hostIp === '127.0.0.1')));
  const locations = (server: { block: NginxDirective[] } | undefined): Map<string, NginxDirective[]> =>
    new Map(directives(server?.block, 'location').map((l) => [l.args.join(' '), l.block!]));
  const proxied = (server: { block: NginxDirective[] } | undefined): string[] =>
    [...locations(server)].filter(([, b]) => directive(b, 'proxy_pass')).map(([path]) => path).sort();
  const limits = [...configs.values()].map((cfg) => cfg.limits.maxPayloadBytes);
  const byRole = (role: Config['role']): string[] => [...configs].filter(([, cfg]) => cfg.role === role).map(([name]) => name);
  const upstreamOf = (loc: NginxDirective[]): string => {
    const target = directive(loc, 'proxy_pass')?.args[0] ?? '';
    const m = /^http:\/\/([\w-]+)$/.exec(target);
    assert.ok(m, `proxy_pass ${target}: an upstream, without a URI so paths pass unchanged`);
    assert.ok(upstreams.has(m[1]!), `upstream ${m[1]} is defined`);
    return m[1]!;
  };
  const members = (name: string): string[] => directives(upstreams.get(name), 'server').map((s) => s.args[0]!).sort();

  it('mounts its config and uses an image that supports run-time upstream resolution', () => {
    assert.equal(confFile, 'deploy/nginx/nginx.conf');
    assert.ok(volumeMounts(svc, 'nginx').every((m) => m.named || m.readOnly), 'config mounted read-only');
    const version = /^nginx:(\d+)\.(\d+)/.exec(String(svc.image));
    assert.ok(version, 'nginx image with a version');
    const usesResolve = [...upstreams.values()].some((u) => directives(u, 'server').some((s) => s.args.includes('resolve')));
    if (usesResolve) {
      assert.ok(Number(version[1]) > 1 || Number(version[2]) >= 27, '"resolve" in upstream needs nginx 1.27.3 or newer');
      assert.ok(directive(http, 'resolver'), '"resolve" needs a resolver');
      for (const [name, u] of upstreams) assert.ok(directive(u, 'zone'), `upstream ${name}: "resolve" needs a zone`);
    }
  });

  it('routes /bitrix/subws/, /bitrix/sub/ and /bitrix/rest/ publicly, /bitrix/pub/ and /server-stat/ only internally', () => {
    assert.ok(publicServer, 'a server on the public published port');
    assert.ok(internalServer, 'a server on the 127.0.0.1 published port');
    assert.notEqual(publicServer, internalServer);
    assert.deepEqual(proxied(publicServer), ['/bitrix/rest/', '/bitrix/sub/', '/bitrix/subws/']);
    assert.deepEqual(proxied(internalServer), ['/bitrix/pub/', '/server-stat/']);
    for (const server of [publicServer, internalServer]) {
      const fallback = locations(server).get('/');
      assert.deepEqual(directive(fallback, 'return')?.args, ['404'], 'anything else is 404');
      const bodyLimit = nginxBytes(directive(server.block, 'client_max_body_size')?.args[0] ?? '1m');
      for (const limit of limits) assert.ok(bodyLimit > limit, `client_max_body_size above limits.maxPayloadBytes (${limit}), so jetpull answers 413 itself`);
    }
    assert.equal(directive(locations(internalServer).get('/bitrix/pub/'), 'proxy_ignore_client_abort')?.args[0], 'on', 'publishes complete when the portal gives up');
  });

  it('upgrades WebSockets and holds long polls on the subscription locations', () => {
    const map = directives(http, 'map').find((m) => m.args.join(' ') === '$http_upgrade $connection_upgrade');
    assert.ok(map, 'map $http_upgrade $connection_upgrade');
    assert.deepEqual(directive(map.block, 'default')?.args, ['upgrade']);
    for (const path of ['/bitrix/subws/', '/bitrix/sub/']) {
      const loc = locations(publicServer).get(path)!;
      assert.equal(directive(loc, 'proxy_http_version')?.args[0], '1.1', `${path}: HTTP/1.1 to the upstream`);
      const headers = new Map(directives(loc, 'proxy_set_header').map((h) => [h.args[0]!.toLowerCase(), h.args[1]]));
      assert.equal(headers.get('upgrade'), '$http_upgrade', `${path}: Upgrade header`);
      assert.equal(headers.get('connection'), '$connection_upgrade', `${path}: Connection header`);
      assert.equal(directive(loc, 'proxy_buffering')?.args[0], 'off', `${path}: proxy_buffering off`);
      const readTimeout = nginxSeconds(directive(loc, 'proxy_read_timeout')?.args[0] ?? '60s');
      assert.ok(readTimeout >= 60, `${path}: proxy_read_timeout at least 60 s`);
      for (const cfg of configs.values()) {
        assert.ok(readTimeout * 1000 > cfg.gateway.longPollTimeoutMs, `${path}: read timeout above the long-poll hold`);
        assert.ok(readTimeout * 1000 > cfg.gateway.pingIntervalMs, `${path}: read timeout above the WebSocket ping interval`);
      }
    }
  });

  it('balances over every gateway and publisher, with keepalive and without stickiness', () => {
    const gatewayTargets = byRole('gateway').map((n) => `${n}:${listenerPort(configs.get(n)!, 'sub')}`).sort();
    const publisherTargets = byRole('publisher').map((n) => `${n}:${listenerPort(configs.get(n)!, 'pub')}`).sort();
    for (const path of ['/bitrix/subws/', '/bitrix/sub/', '/bitrix/rest/']) {
      assert.deepEqual(members(upstreamOf(locations(publicServer).get(path)!)), gatewayTargets, `${path}: every gateway`);
    }
    for (const path of ['/bitrix/pub/', '/server-stat/']) {
      assert.deepEqual(members(upstreamOf(locations(internalServer).get(path)!)), publisherTargets, `${path}: every publisher`);
    }
    for (const [name, u] of upstreams) {
      assert.ok(directive(u, 'keepalive'), `upstream ${name}: keepalive connections`);
      for (const sticky of ['ip_hash', 'hash', 'sticky']) assert.equal(directive(u, sticky), undefined, `upstream ${name}: no ${sticky}, jetpull needs no sticky sessions`);
    }
    for (const server of [publicServer, internalServer]) {
      for (const [path, loc] of locations(server)) {
        if (!directive(loc, 'proxy_pass')) continue;
        assert.equal(directive(loc, 'proxy_http_version')?.args[0], '1.1', `${path}: keepalive to the upstream needs HTTP/1.1`);
        assert.ok(directives(loc, 'proxy_set_header').some((h) => h.args[0]!.toLowerCase() === 'connection'), `${path}: sets Connection (a plain request must not send "close")`);
      }
    }
  });

  it('answers its healthcheck from a location that returns 200', () => {
    const argv = healthcheckArgv(svc, 'nginx');
    const url = new URL(argv.find((a) => a.startsWith('http://'))!);
    const port = Number(url.port || 80);
    const server = servers.find((s) => s.ports.includes(port));
    assert.ok(server, `a server on port ${port}`);
    const loc = locations(server).get(`= ${url.pathname}`);
    assert.equal(directive(loc, 'return')?.args[0], '200', `location = ${url.pathname} returns 200`);
  });
});

describe('deploy - Prometheus and Grafana', () => {
  const c = composeFile('docker-compose.yml');
  const jetpull = jetpullServices(c);
  const configs = new Map(jetpull.map(([name, s]) => [name, jetpullConfig(name, s)]));
  const prometheus = c.services.prometheus!;
  const grafana = c.services.grafana!;

  it('scrapes /metrics on the admin port of every jetpull service', () => {
    const file = mountedFile(c, prometheus, 'prometheus', '/etc/prometheus/prometheus.yml');
    const prom = obj(parseYamlSubset(read(file)), file);
    const jobs = list(prom.scrape_configs, 'scrape_configs').map((j) => obj(j, 'scrape job'));
    const targets = new Set<string>();
    for (const job of jobs) {
      const path = job.metrics_path ?? '/metrics';
      for (const sc of list(job.static_configs ?? [], 'static_configs')) {
        for (const t of list(obj(sc, 'static_config').targets, 'targets')) if (path === '/metrics') targets.add(String(t));
      }
    }
    for (const [name, cfg] of configs) {
      assert.equal(cfg.admin.port, 9180);
      assert.ok(targets.has(`${name}:${cfg.admin.port}`), `${file} scrapes ${name}:${cfg.admin.port}`);
    }
  });

  it('provisions the Prometheus data source and the dashboard folder that compose mounts', () => {
    assert.equal(mountedFile(c, grafana, 'grafana', '/etc/grafana/provisioning/datasources/prometheus.yml'), 'deploy/grafana/provisioning/datasources/prometheus.yml');
    const ds = obj(parseYamlSubset(read('deploy/grafana/provisioning/datasources/prometheus.yml')), 'datasources file');
    const source = obj(list(ds.datasources, 'datasources')[0], 'datasource');
    assert.equal(source.type, 'prometheus');
    const url = new URL(String(source.url));
    assert.ok(url.hostname in c.services && /^prom\/prometheus:/.test(String(c.services[url.hostname]!.image)), 'the data source is the prometheus service');
    assert.equal(url.port, '9090');
    const dashboards = obj(parseYamlSubset(read('deploy/grafana/provisioning/dashboards/dashboards.yml')), 'dashboards file');
    for (const p of list(dashboards.providers, 'providers')) {
      const path = String(obj(obj(p, 'provider').options, 'provider.options').path);
      assert.equal(mountedFile(c, grafana, 'grafana', `${path}/jetpull.json`), 'deploy/grafana/dashboards/jetpull.json', `${path} is the mounted dashboards folder`);
    }
    const home = serviceEnv(grafana, 'grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) assert.ok(existsSync(join(ROOT, mountedFile(c, grafana, 'grafana', home))), 'the home dashboard exists');
  });

  it('has a dashboard whose queries use only metrics jetpull exports, on the provisioned data source', async () => {
    const ds = obj(list(obj(parseYamlSubset(read('deploy/grafana/provisioning/datasources/prometheus.yml')), 'ds').datasources, 'datasources')[0], 'datasource');
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/jetpull.json')) as { uid?: string; title?: string; panels?: Panel[] };
    assert.ok(dashboard.uid && dashboard.title, 'the dashboard has a uid and a title');
    const { names, labels } = await knownMetrics();
    const used = new Set<string>();
    let queries = 0;
    for (const panel of allPanels(dashboard.panels)) {
      if (panel.type === 'row') continue;
      assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has queries`);
      assert.equal(panel.datasource?.uid, ds.uid, `panel "${panel.title}": provisioned data source`);
      for (const target of panel.targets) {
        assert.equal(target.datasource?.uid ?? ds.uid, ds.uid, `panel "${panel.title}": provisioned data source`);
        const expr = target.expr ?? '';
        const found = promqlNames(expr);
        assert.ok(found.metrics.length > 0, `panel "${panel.title}": ${expr} names a metric`);
        for (const m of found.metrics) {
          assert.ok(names.has(m), `panel "${panel.title}": ${m} is not a jetpull metric (src/metrics/metrics.ts)`);
          used.add(m);
        }
        for (const l of found.labels) assert.ok(labels.has(l), `panel "${panel.title}": label ${l} is not on any jetpull metric`);
        queries++;
      }
    }
    assert.ok(queries > 0);
    for (const required of [
      'jetpull_connections',
      'jetpull_messages_delivered_total',
      'jetpull_publish_duration_seconds_bucket',
      'jetpull_publish_duration_seconds_count',
      'jetpull_replay_duration_seconds_count',
      'jetpull_replay_duration_seconds_bucket',
      'jetpull_slow_client_disconnects_total',
      'jetpull_admission_rejections_total',
      'jetpull_nats_connected',
      'jetpull_nats_reconnects_total',
      'jetpull_catch_ups_total',
      'jetpull_gaps_filled_total',
      'jetpull_process_cpu_seconds_total',
      'jetpull_process_resident_memory_bytes',
    ]) {
      assert.ok(used.has(required), `the dashboard shows ${required}`);
    }
  });

  it('keeps Grafana\'s admin password out of the file', () => {
    const env = obj(grafana.environment, 'grafana.environment');
    const password = env.GF_SECURITY_ADMIN_PASSWORD;
    if (password !== undefined) assert.match(String(password), /^\$\{[A-Z_]+:-[^}]*\}$/, 'the admin password comes from the environment');
    assert.notEqual(env.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Admin', 'anonymous users are viewers at most');
  });
});

describe('deploy - NATS configs', () => {
  const files = [
    'deploy/nats/nats-server.conf',
    ...readdirSync(join(ROOT, 'deploy/nats/cluster'))
      .filter((f) => /^nats\d+\.conf$/.test(f))
      .map((f) => `deploy/nats/cluster/${f}`),
  ];

  it('every node config is valid for nats-server -t', async () => {
    const binary = natsServerBinary();
    assert.ok(files.length >= 4, 'the single-node config and one per cluster node');
    for (const file of files) {
      const { code, output } = await run(binary, ['-c', join(ROOT, file), '-t']);
      assert.equal(code, 0, `nats-server -c ${file} -t: ${output.trim()}`);
    }
  });

  it('the cluster nodes differ only in their name and routes', () => {
    const nodes = files.filter((f) => f.includes('/cluster/')).map((f) => parseNatsConf(join(ROOT, f)));
    const shared = nodes.map(({ server_name: _name, cluster, ...rest }) => {
      const { routes: _routes, ...clusterRest } = (cluster ?? {}) as NatsBlock;
      return { ...rest, cluster: clusterRest };
    });
    for (const s of shared.slice(1)) assert.deepEqual(s, shared[0]);
  });
});

describe('deploy - deploy/compose.single.yml (single-node variant)', () => {
  const c = composeFile('deploy/compose.single.yml');
  const nats = c.services.nats!;
  const app = c.services.jetpull!;
  const resolvedEnv = serviceEnv(app, 'jetpull');
  const natsCmd = list(nats.command, 'nats.command').map(String);
  const conf = parseNatsConf(join(ROOT, mountedFile(c, nats, 'nats', natsCmd[1]!)));

  it('runs nats with the deploy config, a named data volume and a JetStream healthcheck', () => {
    assert.match(String(nats.image), /^nats:2\.\d+/);
    assert.deepEqual(natsCmd, ['-c', '/etc/nats/nats-server.conf']);
    assert.equal(mountedFile(c, nats, 'nats', '/etc/nats/nats-server.conf'), 'deploy/nats/nats-server.conf');
    const data = volumeMounts(nats, 'nats').find((m) => m.target === natsStr(conf, 'jetstream.store_dir'));
    assert.ok(data?.named, 'store_dir is on a named volume');
    assert.ok(Object.keys(obj(c.doc.volumes, 'volumes')).includes(data.source), 'the data volume is declared');
    const health = healthcheckArgv(nats, 'nats');
    assert.ok(health.some((a) => a.includes(`:${natsStr(conf, 'http')}/healthz`)), 'healthcheck asks the monitoring port');
    for (const p of portMappings(nats, 'nats')) assert.equal(p.hostIp, '127.0.0.1', `nats port ${p.raw} must stay on the loopback interface`);
  });

  it('builds jetpull from deploy/Dockerfile and starts it once nats is healthy', () => {
    assert.deepEqual(jetpullServices(c).map(([n]) => n), ['jetpull']);
    assert.equal(obj(obj(app.depends_on, 'jetpull.depends_on').nats, 'depends_on.nats').condition, 'service_healthy');
    assert.equal(app.restart, 'unless-stopped');
    assert.ok(composeMs(app.stop_grace_period, 'jetpull') > defaults.gateway.drainWindowMs + shutdownGraceMs(), 'stop_grace_period leaves time to drain');
    assert.deepEqual(healthcheckArgv(app, 'jetpull'), healthcheckArgv(composeFile('docker-compose.yml').services.gateway1!, 'gateway1'), 'the same healthcheck as the full stack');
  });

  it('sets only known settings, and they load into the intended listeners', () => {
    const config = jetpullConfig('jetpull', app);
    assert.equal(resolvedEnv.NATS_URL, 'nats://nats:4222');
    assert.match(String(obj(app.environment, 'env').PUSH_SECURITY__KEY), /^\$\{[A-Z_]+:-[^}]*\}$/, 'the key comes from the environment, not the file');
    assert.equal(config.nats.url, 'nats://nats:4222');
    assert.equal(config.servers.length, 2);
    const [main, trusted] = config.servers;
    assert.deepEqual([main!.hostname, main!.port, Object.keys(main!.routes).sort()], ['0.0.0.0', 8010, ['rest', 'sub']]);
    assert.deepEqual([trusted!.hostname, trusted!.port, Object.keys(trusted!.routes).sort()], ['0.0.0.0', 8895, ['pub', 'stat']]);
    const published = new Map(portMappings(app, 'jetpull').map((p) => [p.container, p]));
    assert.ok(published.has(main!.port), 'the browser port is published');
    assert.equal(published.get(trusted!.port)?.hostIp, '127.0.0.1', 'the publish port stays off public interfaces');
    assert.ok(!published.has(config.admin.port), 'the admin port is not published');
  });

  it('matches the NATS config: client port, payload size, store size', () => {
    const config = jetpullConfig('jetpull', app);
    assert.equal(natsStr(conf, 'port'), new URL(String(resolvedEnv.NATS_URL)).port);
    const maxPayload = natsSize(natsStr(conf, 'max_payload') ?? '1MB');
    // The message stream accepts maxPayloadBytes + 4096 (headers); NATS must too.
    assert.ok(maxPayload >= config.limits.maxPayloadBytes + 4096, `max_payload ${maxPayload} is too small`);
    const maxFileStore = natsSize(natsStr(conf, 'jetstream.max_file_store') ?? '0');
    assert.ok(config.storage.streamMaxBytes > 0 && config.storage.streamMaxBytes < maxFileStore, 'the stream is bounded below max_file_store');
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
  it('names only known settings in the compose files and deploy/', () => {
    const composeFiles = ['docker-compose.yml', 'deploy/compose.single.yml'];
    const files = [
      ...composeFiles,
      'deploy/README.md',
      'deploy/Dockerfile',
      'deploy/nats/nats-server.conf',
      ...readdirSync(join(ROOT, 'deploy/nats/cluster')).map((f) => `deploy/nats/cluster/${f}`),
      'deploy/nginx/nginx.conf',
      'deploy/prometheus/prometheus.yml',
      'deploy/jetpull.env.example',
    ];
    // Compose's own ${VAR} interpolation variables are set on the host, not in jetpull.
    const composeVars = new Set(composeFiles.flatMap((f) => [...read(f).matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!)));
    for (const v of composeVars) assert.ok(!KNOWN_ENV.has(v), `${v} is a jetpull setting; do not reuse it as a compose variable`);
    const streamNames = new Set([MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET]);
    for (const file of files) {
      const text = read(file);
      for (const [name] of text.matchAll(/\b(?:PUSH_[A-Z0-9_]*[A-Z0-9]|NATS_URL)\b/g)) {
        const hostVar = (composeFiles.includes(file) || file === 'deploy/README.md') && composeVars.has(name);
        const allowed = KNOWN_ENV.has(name) || streamNames.has(name) || hostVar;
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
