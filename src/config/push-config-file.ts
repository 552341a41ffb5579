import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ConfigInput } from './schema.ts';

/**
 * Reads a Push server 2.0 `config.json` as BitrixVM installs it, so an existing install
 * switches by pointing at its own file. Keys jetpull has no use for (Redis address,
 * debug, clusterMode) are reported and ignored; jetpull's own settings go under the
 * optional `jetpull` key, in the shape of the runtime schema.
 */

const num = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

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
  security: z.looseObject({ key: z.string().optional(), algo: z.string().optional() }).optional(),
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
  'security.key', 'security.algo',
  'storage.messageTTL', 'storage.messageTLL', 'storage.channelTTL', 'storage.channelTLL',
  'storage.onlineTTL', 'storage.onlineTLL', 'storage.onlineDelta',
  'limits.maxPayload', 'limits.maxConnPerChannel', 'limits.maxMessagesPerRequest', 'limits.maxChannelsPerRequest',
]);

export interface PushConfigFile {
  input: ConfigInput;
  /** Dotted paths present in the file but not used by jetpull. */
  ignoredKeys: string[];
}

export class ConfigFileError extends Error {
  constructor(readonly file: string, readonly problems: string[], options?: ErrorOptions) {
    super(`invalid config file ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.name = 'ConfigFileError';
  }
}

export function readPushConfigFile(file: string): PushConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigFileError(file, [`cannot be read as JSON: ${(err as Error).message}`], { cause: err });
  }
  const parsed = LegacyFile.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigFileError(
      file,
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  return { input: toConfigInput(parsed.data), ignoredKeys: ignoredKeys(raw as Record<string, unknown>) };
}

function toConfigInput(file: z.infer<typeof LegacyFile>): ConfigInput {
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
  if (file.processUniqueId !== undefined) input.processUniqueId = file.processUniqueId;
  if (file.publishMode === true && own.role === undefined) input.role = 'publisher';
  const security = { ...(own.security as object), ...definedOnly({ key: file.security?.key, algo: file.security?.algo }) };
  if (Object.keys(security).length > 0) input.security = security;
  const st = file.storage ?? {};
  const storage = {
    ...(own.storage as object),
    ...definedOnly({
      // BitrixVM templates spell these "TLL"; both spellings are honoured, the correct one wins.
      messageTtlSec: st.messageTTL ?? st.messageTLL,
      channelTtlSec: st.channelTTL ?? st.channelTLL,
      onlineTtlSec: st.onlineTTL ?? st.onlineTLL,
      onlineDeltaSec: st.onlineDelta,
    }),
  };
  if (Object.keys(storage).length > 0) input.storage = storage;
  const li = file.limits ?? {};
  const limits = {
    ...(own.limits as object),
    ...definedOnly({
      maxPayloadBytes: li.maxPayload,
      maxConnPerChannel: li.maxConnPerChannel,
      maxMessagesPerRequest: li.maxMessagesPerRequest,
      maxChannelsPerRequest: li.maxChannelsPerRequest,
    }),
  };
  if (Object.keys(limits).length > 0) input.limits = limits;
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

function definedOnly(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function ignoredKeys(raw: Record<string, unknown>): string[] {
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
