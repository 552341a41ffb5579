import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { validateConfigInput } from '../config/load.ts';
import { closest, unwrap } from '../config/issues.ts';
import { ConfigFileError, filePathOf, ignoredKeys, parsePushConfig, type PushConfigFile } from '../config/push-config-file.ts';
import { ConfigSchema } from '../config/schema.ts';
import { parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { ExitCode } from './errors.ts';

const help = `Usage: jetpull check <file> [--json]

Validates a config file as jetpull serve --config <file> reads it: a Push server 2.0
config.json (BitrixVM's push-server-*.json work as they are), with jetpull's own
settings under "jetpull". Reports every problem with its path in the file and the
fix, and notes the Push server 2.0 keys jetpull ignores. The environment is not
applied: what is checked is the file.

Options:
  --json      print {"file", "ok", "problems": [{path, message, fix}], "notes": [{path, message}]}
  -h, --help  this help

Exit codes: 0 the file is valid (notes do not count); 2 it has problems, or cannot be read.`;

interface Finding {
  path: string;
  message: string;
  fix?: string;
}

/** Push server 2.0 keys that jetpull has no use for, and why. */
const IGNORED_ON_PURPOSE: Record<string, string> = {
  clusterMode: 'jetpull processes always share their state through NATS',
  debug: 'jetpull writes JSON logs to stdout (PUSH_LOG__LEVEL)',
  cloudMode: 'the cloud mode of Bitrix\'s own servers is not supported',
  licenseServer: 'the cloud mode of Bitrix\'s own servers is not supported',
  licenseStorage: 'the cloud mode of Bitrix\'s own servers is not supported',
  'storage.type': 'jetpull keeps messages in NATS JetStream, not Redis',
  'storage.host': 'jetpull keeps messages in NATS JetStream, not Redis (NATS_URL)',
  'storage.port': 'jetpull keeps messages in NATS JetStream, not Redis (NATS_URL)',
  'storage.socket': 'jetpull keeps messages in NATS JetStream, not Redis (NATS_URL)',
  'storage.statTLLMsec': 'server stats are written every 2 s',
  'storage.statTTLMsec': 'server stats are written every 2 s',
  'storage.statDeltaMsec': 'server stats are written every 2 s',
  'limits.maxRequestsPerSecond': 'Push server 2.0 does not read it either; new connections are limited by gateway.maxNewConnectionsPerSec',
};

/** Keys jetpull reads in each Push server 2.0 section, for spotting a misspelt one. */
const READ_IN_SECTION: Record<string, string[]> = {
  '': ['servers', 'processUniqueId', 'publishMode', 'security', 'storage', 'limits', 'jetpull'],
  security: ['key', 'algo'],
  storage: ['messageTTL', 'channelTTL', 'onlineTTL', 'onlineDelta'],
  limits: ['maxPayload', 'maxConnPerChannel', 'maxMessagesPerRequest', 'maxChannelsPerRequest'],
};

export const check: Command = {
  name: 'check',
  help,
  async run(argv, io) {
    const { values, args } = parseCommand('check', argv, { json: { type: 'boolean' } }, { min: 1, max: 1, name: 'the config file' });
    if (values.help) {
      io.out(help);
      return 0;
    }
    const file = args[0]!;
    const { problems, notes, summary } = findings(file);
    if (values.json) {
      io.out(JSON.stringify({ file, ok: problems.length === 0, problems, notes }, null, 2));
    } else {
      const lines = [problems.length === 0 ? `${file}: ok${summary ? ` (${summary})` : ''}` : `${file}: ${problems.length} problem(s)`];
      for (const p of problems) lines.push(`  ${p.path}: ${p.message}`, `    fix: ${p.fix}`);
      if (notes.length > 0) lines.push('notes (not problems):', ...notes.map((n) => `  ${n.path}: ${n.message}`));
      io.out(lines.join('\n'));
    }
    return problems.length === 0 ? ExitCode.Ok : ExitCode.Usage;
  },
};

function findings(file: string): { problems: Finding[]; notes: Finding[]; summary?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { problems: [{ path: '(file)', message: `cannot be read as JSON: ${(err as Error).message}`, fix: missing ? 'check the path' : 'fix the JSON syntax (no comments, no trailing commas)' }], notes: [] };
  }
  const problems: Finding[] = [];
  // A wrong Push server 2.0 value stops the reading: it is reported and left out, so that
  // the rest is checked too. A required one cannot be left out: then only what is under
  // "jetpull" and the keys jetpull skips are checked besides.
  let read: PushConfigFile | undefined;
  while (read === undefined) {
    try {
      read = parsePushConfig(raw, file);
    } catch (err) {
      if (!(err instanceof ConfigFileError)) throw err;
      if (err.issues.some((i) => i.path.length === 0)) {
        return { problems: [{ path: '(file)', message: 'not a JSON object', fix: 'a config file holds one object: { "servers": [...], "security": {...}, "jetpull": {...} }' }], notes: [] };
      }
      const fresh = err.issues.filter((i) => !problems.some((p) => p.path === i.path.join('.')));
      if (fresh.length === 0) return withOwnSettings(raw as Record<string, unknown>, problems);
      problems.push(...fresh.map((i) => ({ path: i.path.join('.'), message: i.message, fix: i.fix })));
      raw = without(raw, fresh.map((i) => i.path));
    }
  }
  const { notes } = sortIgnored(read.ignoredKeys, problems);
  const result = validateConfigInput(read.input);
  if ('issues' in result) {
    const reported = new Set(problems.map((p) => p.path));
    for (const i of result.issues) {
      const path = filePathOf(i.path, read.origins).join('.');
      if (!reported.has(path)) problems.push({ path, message: i.message, fix: i.fix });
    }
  }
  if (problems.length > 0 || 'issues' in result) return { problems, notes };
  const c = result.config;
  const listeners = c.servers.map((s) => `${s.hostname}:${s.port} ${Object.keys(s.routes).filter((r) => s.routes[r as 'sub'] !== undefined).join(',')}`);
  return { problems, notes, summary: `role ${c.role}; ${listeners.join('; ')}` };
}

function withOwnSettings(raw: Record<string, unknown>, problems: Finding[]): { problems: Finding[]; notes: Finding[] } {
  const own = validateConfigInput(raw.jetpull ?? {});
  if ('issues' in own) problems.push(...own.issues.map((i) => ({ path: ['jetpull', ...i.path].join('.'), message: i.message, fix: i.fix })));
  return sortIgnored(ignoredKeys(raw), problems);
}

/** A copy of the JSON value without the values at `paths`. */
function without(value: unknown, paths: ReadonlyArray<readonly (string | number)[]>): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const path of paths) {
    let node: Record<string, unknown> | undefined = copy;
    for (const step of path.slice(0, -1)) node = node?.[String(step)] as Record<string, unknown> | undefined;
    if (node !== undefined && typeof node === 'object') delete node[String(path.at(-1))];
  }
  return copy;
}

function sortIgnored(keys: readonly string[], problems: Finding[]): { problems: Finding[]; notes: Finding[] } {
  const notes: Finding[] = [];
  for (const key of keys) {
    const finding = ignoredKey(key);
    (finding.fix === undefined ? notes : problems).push(finding);
  }
  return { problems, notes };
}

/** A key the loader skipped: a note when Push server 2.0 has it, a problem when it looks like a mistake. */
function ignoredKey(path: string): Finding {
  const reason = IGNORED_ON_PURPOSE[path];
  if (reason !== undefined) return { path, message: `ignored: ${reason}` };
  const parts = path.split('.');
  const section = parts.length > 1 ? parts[0]! : '';
  const key = parts.at(-1)!;
  if (isJetpullSetting(parts)) {
    return { path, message: 'a jetpull setting outside "jetpull", so it is ignored', fix: `move it to jetpull.${path}` };
  }
  const near = closest(key, READ_IN_SECTION[section] ?? []);
  if (near !== undefined) return { path, message: 'unknown key, ignored', fix: `did you mean ${section ? `${section}.` : ''}${near}?` };
  return { path, message: 'not a Push server 2.0 or jetpull key: ignored' };
}

function isJetpullSetting(parts: readonly string[]): boolean {
  let node: z.ZodType = ConfigSchema;
  for (const part of parts) {
    const object = unwrap(node);
    const next = object instanceof z.ZodObject ? (object.shape as Record<string, z.ZodType>)[part] : undefined;
    if (next === undefined) return false;
    node = next;
  }
  return true;
}
