import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { envVariables } from '../src/config/load.ts';
import { ConfigSchema, ListenerSchema } from '../src/config/schema.ts';

/**
 * Renders deploy/jetpull.env.example from the zod schema, so that the list of
 * settings, their defaults and descriptions cannot drift from src/config/schema.ts:
 *
 *   npx tsx deploy/gen-env-example.ts > deploy/jetpull.env.example
 *
 * test/deploy/env.test.ts fails when the committed file differs from this output.
 */

const WIDTH = 88;

/** Settings the schema leaves undescribed; kept here so every variable says what it does. */
const EXTRA_DESCRIPTIONS: Record<string, string> = {
  'nats.user': 'User name for NATS authentication (with nats.password).',
  'nats.password': 'Password for NATS authentication (with nats.user). A secret: pass it from a secret store.',
  'nats.token': 'Token for NATS authentication. A secret: pass it from a secret store.',
  'log.level': 'Lowest level written to the log (JSON lines on stdout).',
};

/** Defaults computed on the machine that runs the schema; shown symbolically. */
const DYNAMIC_DEFAULTS: Record<string, string> = {
  processUniqueId: '<hostname>-<pid>',
};

/** Shortcuts that do not follow PUSH_<SECTION>__<FIELD>; described by hand. */
const SHORTCUTS: Array<{ name: string; example: string; text: string }> = [
  {
    name: 'NATS_URL',
    example: '',
    text:
      'NATS server URL(s), comma separated, e.g. nats://nats:4222 (same as PUSH_NATS__URL). ' +
      'Unset: jetpull starts nats-server from PATH as a child process; in a container it must always be set.',
  },
  {
    name: 'PUSH_PORT',
    example: '8010',
    text:
      'Port of the main listener. When PUSH_PUB_PORT is unset it serves every route ' +
      '(/bitrix/subws/ with its /bitrix/sub/ alias, /bitrix/rest/, /bitrix/pub/, /server-stat/); ' +
      'when it is set, only /bitrix/subws/ and /bitrix/rest/. Setting PUSH_PORT, PUSH_HOSTNAME or ' +
      'PUSH_PUB_PORT replaces the listeners of a --config file.',
  },
  {
    name: 'PUSH_HOSTNAME',
    example: '127.0.0.1',
    text: 'Bind address of the main listener. In a container use 0.0.0.0.',
  },
  {
    name: 'PUSH_PUB_PORT',
    example: '',
    text:
      'Port of a second, trusted listener serving the backend routes /bitrix/pub/ and /server-stat/ ' +
      "(the portal's path_to_publish). Unset: no second listener. Keep it off public networks.",
  },
  {
    name: 'PUSH_PUB_HOSTNAME',
    example: '127.0.0.1',
    text: 'Bind address of the trusted listener; used only with PUSH_PUB_PORT.',
  },
];

interface Leaf {
  description?: string;
  defaultValue?: unknown;
  hasDefault: boolean;
  inner: z.ZodType;
}

/** Follows optional/default/prefault wrappers, collecting the first description and default. */
function inspect(schema: z.ZodType): Leaf {
  let s: z.ZodType = schema;
  let description: string | undefined;
  let defaultValue: unknown;
  let hasDefault = false;
  for (;;) {
    description ??= s.description;
    if (s instanceof z.ZodDefault && !hasDefault) {
      hasDefault = true;
      defaultValue = (s as unknown as { def: { defaultValue: unknown } }).def.defaultValue;
    }
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      s = (s as unknown as { def: { innerType: z.ZodType } }).def.innerType;
      continue;
    }
    return { ...(description !== undefined ? { description } : {}), defaultValue, hasDefault, inner: s };
  }
}

function leafAt(path: string[]): Leaf {
  let schema: z.ZodType = ConfigSchema;
  for (const key of path) {
    const obj = inspect(schema).inner;
    if (!(obj instanceof z.ZodObject)) throw new Error(`${path.join('.')}: ${key} is not inside an object`);
    const child = (obj.shape as Record<string, z.ZodType>)[key];
    if (child === undefined) throw new Error(`${path.join('.')}: no field ${key}`);
    schema = child;
  }
  return inspect(schema);
}

function renderValue(path: string[], leaf: Leaf): string {
  const dynamic = DYNAMIC_DEFAULTS[path.join('.')];
  if (dynamic !== undefined) return '';
  if (!leaf.hasDefault || leaf.defaultValue === undefined) return '';
  const v = leaf.defaultValue;
  // Lists are comma separated in the environment; an empty one is an empty variable.
  if (Array.isArray(v)) return v.join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function defaultNote(path: string[], leaf: Leaf): string {
  const dynamic = DYNAMIC_DEFAULTS[path.join('.')];
  if (dynamic !== undefined) return `Default: ${dynamic}.`;
  if (!leaf.hasDefault || leaf.defaultValue === undefined) return 'Default: unset.';
  const value = leaf.defaultValue;
  if (Array.isArray(value)) return value.length === 0 ? 'Default: empty (a comma separated list).' : `Default: ${value.join(',')} (a comma separated list).`;
  const human = typeof value === 'number' ? humanize(path[path.length - 1]!, value) : undefined;
  return `Default: ${typeof value === 'string' ? value : JSON.stringify(value)}${human ? ` (${human})` : ''}.`;
}

/** A readable form of sizes and durations whose unit is in the field name. */
function humanize(field: string, n: number): string | undefined {
  if (n <= 0) return undefined;
  const pick = (units: Array<[string, number]>): string | undefined => {
    for (const [unit, size] of units) if (n >= size && n % size === 0) return `${n / size} ${unit}`;
    return undefined;
  };
  if (field.endsWith('Bytes')) return pick([['GiB', 1 << 30], ['MiB', 1 << 20], ['KiB', 1 << 10]]);
  if (field.endsWith('Ms') && n >= 1_000) return pick([['h', 3_600_000], ['min', 60_000], ['s', 1_000]]);
  if (field.endsWith('Sec') && n >= 60) return pick([['h', 3_600], ['min', 60]]);
  return undefined;
}

function allowed(leaf: Leaf): string | undefined {
  if (leaf.inner instanceof z.ZodEnum) return `One of: ${(leaf.inner.options as string[]).join(', ')}.`;
  if (leaf.inner instanceof z.ZodBoolean) return 'One of: true, false.';
  return undefined;
}

function wrap(text: string, prefix = '# '): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && prefix.length + line.length + 1 + word.length > WIDTH) {
      lines.push(prefix + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(prefix + line);
  return lines;
}

function listenerFields(): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(ListenerSchema.shape as Record<string, z.ZodType>)) {
    const leaf = inspect(child);
    const required = !(child instanceof z.ZodOptional || child instanceof z.ZodDefault || child instanceof z.ZodPrefault);
    const text = `${key}${required ? ' (required)' : ''}: ${leaf.description ?? ''}`;
    out.push(...wrap(text, '#   '));
  }
  return out;
}

export function renderEnvExample(): string {
  const out: string[] = [
    '# jetpull environment variables: every setting with its default and description.',
    '# GENERATED from src/config/schema.ts by deploy/gen-env-example.ts; do not edit by hand.',
    '# Regenerate: npx tsx deploy/gen-env-example.ts > deploy/jetpull.env.example',
    '#',
    '# Every line is commented out, so this file changes nothing as it is: copy it,',
    '# uncomment what you need and pass it with `docker run --env-file` or `env_file:`.',
    '# An unset or empty variable takes the default. Precedence: schema defaults <',
    '# `--config <file>` (a Push server 2.0 config.json) < environment. An unknown PUSH_*',
    '# variable is an error at start-up. Never commit real secrets to a copy of this file.',
    '',
    '# ---- Shortcuts -------------------------------------------------------------------',
    '',
  ];
  for (const s of SHORTCUTS) {
    out.push(...wrap(s.text), `#${s.name}=${s.example}`, '');
  }
  out.push(
    ...wrap(
      'Every listener as a JSON array; when set, PUSH_PORT, PUSH_HOSTNAME, PUSH_PUB_PORT and PUSH_PUB_HOSTNAME ' +
        'are ignored, and it replaces the listeners of a --config file. Fields of one listener:',
    ),
    ...listenerFields(),
    `#PUSH_SERVERS=[{"port":8010,"hostname":"0.0.0.0","routes":{"sub":"/bitrix/subws/","rest":"/bitrix/rest/"}},{"name":"trusted","port":8895,"hostname":"127.0.0.1","routes":{"pub":"/bitrix/pub/","stat":"/server-stat/","api":"/bitrix/api/"}}]`,
    '',
  );

  let section: string | undefined;
  for (const [name, path] of envVariables()) {
    const current = path.length > 1 ? path[0]! : 'process';
    if (current !== section) {
      section = current;
      const title = `# ---- ${section} `;
      out.push(title + '-'.repeat(Math.max(3, 84 - title.length)), '');
    }
    const leaf = leafAt(path);
    const description = leaf.description ?? EXTRA_DESCRIPTIONS[path.join('.')];
    if (description === undefined) throw new Error(`${path.join('.')}: no description in the schema or in EXTRA_DESCRIPTIONS`);
    const notes = [description, allowed(leaf)].filter(Boolean).join(' ');
    out.push(...wrap(`${path.join('.')}: ${notes}`), `# ${defaultNote(path, leaf)}`, `#${name}=${renderValue(path, leaf)}`, '');
  }
  const text = out.join('\n').replace(/\n+$/, '\n');
  const machine = `${hostname()}-${process.pid}`;
  if (text.includes(machine)) throw new Error('rendered env example contains a machine-specific default');
  return text;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) process.stdout.write(renderEnvExample());
