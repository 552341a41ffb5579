import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { issuesFromZod } from './issues.ts';
import type { ConfigIssue } from './issues.ts';
import type { ConfigInput } from './schema.ts';

/**
 * Reads a Push server 2.0 `config.json` as BitrixVM installs it, so an existing install
 * switches by pointing at its own file. Keys jetpull has no use for (Redis address,
 * debug, clusterMode) are reported and ignored; jetpull's own settings go under the
 * optional `jetpull` key, in the shape of the runtime schema.
 */

const num = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)], { error: 'expected a number (or a string of digits)' });

const LegacyFile = z.looseObject({
  servers: z
    .array(
      z.looseObject({
        name: z.string().optional(),
        port: num,
        hostname: z.string().optional(),
        backlog: num.optional(),
        routes: z.record(z.string(), z.string()).optional(),
        ssl: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .optional(),
  processUniqueId: z.string().optional(),
  publishMode: z.boolean().optional(),
  // previousKeys is jetpull's (Push server 2.0 has one key); 2.0 ignores it if the file goes back.
  security: z.looseObject({ key: z.string().optional(), algo: z.string().optional(), previousKeys: z.array(z.string()).optional() }).optional(),
  storage: z
    .looseObject({
      messageTTL: num.optional(),
      messageTLL: num.optional(),
      channelTTL: num.optional(),
      channelTLL: num.optional(),
      onlineTTL: num.optional(),
      onlineTLL: num.optional(),
      onlineDelta: num.optional(),
    })
    .optional(),
  limits: z
    .looseObject({
      maxPayload: num.optional(),
      maxConnPerChannel: num.optional(),
      maxMessagesPerRequest: num.optional(),
      maxChannelsPerRequest: num.optional(),
    })
    .optional(),
  jetpull: z.record(z.string(), z.unknown()).optional(),
});

/** Top-level and nested keys that are read; anything else is listed as ignored. */
export const READ_KEYS = new Set([
  'servers', 'processUniqueId', 'publishMode', 'security', 'storage', 'limits', 'jetpull',
  'security.key', 'security.algo', 'security.previousKeys',
  'storage.messageTTL', 'storage.messageTLL', 'storage.channelTTL', 'storage.channelTLL',
  'storage.onlineTTL', 'storage.onlineTLL', 'storage.onlineDelta',
  'limits.maxPayload', 'limits.maxConnPerChannel', 'limits.maxMessagesPerRequest', 'limits.maxChannelsPerRequest',
]);

export interface PushConfigFile {
  input: ConfigInput;
  /** Dotted paths present in the file but not used by jetpull. */
  ignoredKeys: string[];
  /**
   * Where settings read from Push server 2.0 keys came from: runtime path → file path
   * (`storage.messageTtlSec` → `storage.messageTLL`). Anything else came from `jetpull.<path>`.
   */
  origins: ReadonlyMap<string, string>;
}

/** The file cannot be used; `issues` carry paths in the file. */
export class ConfigFileError extends Error {
  readonly problems: string[];
  constructor(readonly file: string, readonly issues: readonly ConfigIssue[], options?: ErrorOptions) {
    const problems = issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    super(`invalid config file ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.problems = problems;
    this.name = 'ConfigFileError';
  }
}

/** The place in the file a runtime setting came from. */
export function filePathOf(configPath: readonly string[], origins: ReadonlyMap<string, string>): string[] {
  for (let n = configPath.length; n > 0; n--) {
    const origin = origins.get(configPath.slice(0, n).join('.'));
    if (origin !== undefined) return [...origin.split('.'), ...configPath.slice(n)];
  }
  return ['jetpull', ...configPath];
}

export function readPushConfigFile(file: string): PushConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const fix = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'check the path' : 'fix the JSON syntax (no comments, no trailing commas)';
    throw new ConfigFileError(file, [{ path: [], message: `cannot be read as JSON: ${(err as Error).message}`, fix }], { cause: err });
  }
  return parsePushConfig(raw, file);
}

/** The parsed JSON of a config file (`file` names it in errors). */
export function parsePushConfig(raw: unknown, file: string): PushConfigFile {
  const parsed = LegacyFile.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigFileError(file, issuesFromZod(parsed.error, LegacyFile));
  const origins = new Map<string, string>();
  return { input: toConfigInput(parsed.data, origins), ignoredKeys: ignoredKeys(raw as Record<string, unknown>), origins };
}

function toConfigInput(file: z.infer<typeof LegacyFile>, origins: Map<string, string>): ConfigInput {
  const own = (file.jetpull ?? {}) as Record<string, unknown>;
  const input: Record<string, unknown> = { ...own };
  if (file.servers) {
    input.servers = file.servers.map((s) => ({
      ...(s.name === undefined ? {} : { name: s.name }),
      port: s.port,
      ...(s.hostname === undefined ? {} : { hostname: s.hostname }),
      ...(s.backlog === undefined ? {} : { backlog: s.backlog }),
      routes: pickRoutes(s.routes ?? {}),
      ...(s.ssl === undefined ? {} : { ssl: s.ssl }),
    }));
  }
  if (file.servers) origins.set('servers', 'servers');
  if (file.processUniqueId !== undefined) {
    input.processUniqueId = file.processUniqueId;
    origins.set('processUniqueId', 'processUniqueId');
  }
  if (file.publishMode === true && own.role === undefined) {
    input.role = 'publisher';
    origins.set('role', 'publishMode');
  }
  /** The settings of one section read from Push server 2.0 keys: [runtime name, file key, value]. */
  const section = (name: string, read: Array<[string, string, unknown]>): void => {
    const present = read.filter(([, , v]) => v !== undefined);
    for (const [key, fileKey] of present) origins.set(`${name}.${key}`, `${name}.${fileKey}`);
    const merged = { ...(own[name] as object), ...Object.fromEntries(present.map(([key, , v]) => [key, v])) };
    if (Object.keys(merged).length > 0) input[name] = merged;
  };
  const sec = file.security ?? {};
  section('security', [['key', 'key', sec.key], ['algo', 'algo', sec.algo], ['previousKeys', 'previousKeys', sec.previousKeys]]);
  const st = file.storage ?? {};
  // BitrixVM templates spell these "TLL"; both spellings are honoured, the correct one wins.
  const ttl = (right: 'messageTTL' | 'channelTTL' | 'onlineTTL', wrong: 'messageTLL' | 'channelTLL' | 'onlineTLL'): [string, unknown] =>
    st[right] !== undefined ? [right, st[right]] : [wrong, st[wrong]];
  section('storage', [
    ['messageTtlSec', ...ttl('messageTTL', 'messageTLL')],
    ['channelTtlSec', ...ttl('channelTTL', 'channelTLL')],
    ['onlineTtlSec', ...ttl('onlineTTL', 'onlineTLL')],
    ['onlineDeltaSec', 'onlineDelta', st.onlineDelta],
  ]);
  const li = file.limits ?? {};
  section('limits', [
    ['maxPayloadBytes', 'maxPayload', li.maxPayload],
    ['maxConnPerChannel', 'maxConnPerChannel', li.maxConnPerChannel],
    ['maxMessagesPerRequest', 'maxMessagesPerRequest', li.maxMessagesPerRequest],
    ['maxChannelsPerRequest', 'maxChannelsPerRequest', li.maxChannelsPerRequest],
  ]);
  return input as ConfigInput;
}

function pickRoutes(routes: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['sub', 'pub', 'rest', 'stat']) {
    const path = routes[name];
    if (path !== undefined) out[name] = path;
  }
  return out;
}

export function ignoredKeys(raw: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (!READ_KEYS.has(key)) {
      out.push(key);
      continue;
    }
    if (key === 'security' || key === 'storage' || key === 'limits') {
      for (const sub of Object.keys((value ?? {}) as object)) {
        if (!READ_KEYS.has(`${key}.${sub}`)) out.push(`${key}.${sub}`);
      }
    }
  }
  return out;
}
