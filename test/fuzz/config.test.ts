import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, envVariables, loadConfig, parseConfig, type LoadedConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { corpusProperties, fuzz } from '../helpers/fuzz.ts';

/**
 * The config loader (environment, a Push server 2.0 config file, or an object): whatever
 * it is given, the answer is a frozen Config or a ConfigError whose every problem names
 * where it is, never another exception. A valid environment's values are in the Config.
 */

const SUITE = 'config';
const ENV = envVariables();
const SHORTCUTS = ['NATS_URL', 'PUSH_SERVERS', 'PUSH_PORT', 'PUSH_HOSTNAME', 'PUSH_PUB_PORT', 'PUSH_PUB_HOSTNAME'];
const dir = mkdtempSync(join(tmpdir(), 'jetpull-fuzz-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Each problem starts with the path or variable it is about: `a.b (env PUSH_A__B): …`, `PUSH_X: …`, `--config: …`. */
const PROBLEM = /^(\(root\)|[A-Za-z0-9_.-]+|--config[^:]*|invalid config file [^\n]*)( \(env [A-Z0-9_]+\))?:\s/;

function outcome(load: () => LoadedConfig | Config): { config: Config } | { problems: string[] } {
  let result: LoadedConfig | Config;
  try {
    result = load();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err instanceof Error ? err.stack : String(err)}`);
    assert.ok(err.problems.length > 0, 'a ConfigError with no problem');
    for (const p of err.problems) assert.match(p, PROBLEM);
    return { problems: err.problems };
  }
  const config = 'config' in result && !('servers' in result) ? result.config : (result as Config);
  assertDeepFrozen(config);
  return { config };
}

function assertDeepFrozen(value: unknown, path = 'config'): void {
  if (typeof value !== 'object' || value === null) return;
  assert.ok(Object.isFrozen(value), `${path} is not frozen`);
  for (const [k, v] of Object.entries(value)) assertDeepFrozen(v, `${path}.${k}`);
}

const at = (config: Config, path: string[]): unknown => path.reduce<unknown>((node, key) => (node as Record<string, unknown>)?.[key], config);

/** Values an operator might type, right and wrong. */
const envValue = fc.oneof(
  fc.integer({ min: -2, max: 70_000 }).map(String),
  fc.constantFrom('0', '1', '-1', '1.5', '1e3', '0x10', ' 42 ', ' ', 'NaN', 'Infinity', 'true', 'false', 'sha256', 'nope', 'debug', 'gateway', '[]', '{}', 'null'),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const serversValue = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.array(
    fc.record(
      { port: fc.oneof(fc.integer({ min: -1, max: 70_000 }), envValue), hostname: fc.constantFrom('127.0.0.1', '::', ''), routes: fc.dictionary(fc.constantFrom('sub', 'pub', 'rest', 'stat', 'x'), fc.constantFrom('/a/', 'b', '/bitrix/pub/')) },
      { requiredKeys: [] },
    ),
    { maxLength: 3 },
  ).map((s) => JSON.stringify(s)),
);
const envName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ENV.map(([name]) => name)) },
  fc.constantFrom(...SHORTCUTS),
  fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789'), maxLength: 12 }).map((s) => `PUSH_${s}`),
  fc.constantFrom('HOME', 'PATH', '__proto__', 'constructor', 'push_port'),
);
const env = fc.dictionary(envName, fc.oneof({ weight: 5, arbitrary: envValue }, serversValue, fc.constant(undefined)), { maxKeys: 8 });

/** A Push server 2.0 config.json: its keys with values of any type, plus jetpull's own section and stray keys. */
const legacyFile = fc.record(
  {
    servers: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.record({ name: fc.string(), port: fc.oneof(fc.nat({ max: 70_000 }), fc.jsonValue({ maxDepth: 1 })), hostname: fc.jsonValue({ maxDepth: 1 }), routes: fc.jsonValue({ maxDepth: 2 }), ssl: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: ['port'] }), { maxLength: 3 })),
    processUniqueId: fc.jsonValue({ maxDepth: 1 }),
    publishMode: fc.jsonValue({ maxDepth: 1 }),
    security: fc.oneof(fc.record({ key: fc.jsonValue({ maxDepth: 1 }), algo: fc.oneof(fc.constantFrom('sha1', 'sha256', 'md5', 'nope'), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 2 })),
    storage: fc.dictionary(fc.constantFrom('messageTTL', 'messageTLL', 'channelTTL', 'onlineTTL', 'onlineDelta', 'other'), fc.oneof(fc.nat(), fc.nat().map(String), fc.jsonValue({ maxDepth: 1 }))),
    limits: fc.dictionary(fc.constantFrom('maxPayload', 'maxConnPerChannel', 'maxMessagesPerRequest', 'maxChannelsPerRequest', 'other'), fc.oneof(fc.nat(), fc.nat().map(String), fc.jsonValue({ maxDepth: 1 }))),
    jetpull: fc.oneof(
      fc.dictionary(fc.constantFrom('gateway', 'limits', 'storage', 'security', 'nats', 'role', 'admin', 'log', 'x'), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.dictionary(fc.constantFrom(...ENV.map(([, p]) => p.at(-1)!)), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }))),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    redis: fc.jsonValue({ maxDepth: 2 }),
    __proto__: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

const nest = (path: string[], value: unknown): Record<string, unknown> =>
  path.reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), value as never);

let fileCount = 0;
function writeFile(text: string): string {
  const file = join(dir, `config-${fileCount++}.json`);
  writeFileSync(file, text);
  return file;
}

describe('config loader (property)', () => {
  it('any environment: a Config holding every valid variable given, or a ConfigError naming each problem', async () => {
    await fuzz(
      SUITE,
      'env',
      fc.property(env, (vars) => {
        const result = outcome(() => loadConfig({ argv: [], env: vars }));
        if ('problems' in result) return true;
        for (const [name, path] of ENV) {
          // NATS_URL, the shortcut, wins over PUSH_NATS__URL.
          const value = name === 'PUSH_NATS__URL' && vars.NATS_URL ? vars.NATS_URL : vars[name];
          if (value === undefined || value === '') continue;
          const got = at(result.config, path);
          if (typeof got === 'number') assert.equal(got, Number(value), name);
          else if (typeof got === 'string') assert.equal(got, value, name);
          // Booleans, lists: what the same value gives on its own (beside a key, which
          // security.previousKeys needs); the other variables do not change it.
          else assert.deepEqual(got, at(loadConfig({ argv: [], env: { PUSH_SECURITY__KEY: 'k', [name]: value } }).config, path), name);
        }
        return true;
      }),
      { runs: 2000 },
    );
  });

  it('any config file, with any environment: a Config or a ConfigError naming each problem', async () => {
    await fuzz(
      SUITE,
      'file',
      fc.property(fc.oneof({ weight: 4, arbitrary: legacyFile.map((f) => JSON.stringify(f)) }, fc.json(), fc.string()), env, (text, vars) => {
        const file = writeFile(text);
        outcome(() => loadConfig({ argv: ['--config', file], env: vars }));
        return true;
      }),
      { runs: 1000 },
    );
  });

  it('any object: parseConfig answers a Config or a ConfigError naming each problem', async () => {
    await fuzz(
      SUITE,
      'object',
      fc.property(
        fc.oneof(
          fc.dictionary(fc.constantFrom(...new Set(ENV.map(([, p]) => p[0]!)), 'servers', 'x'), fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.dictionary(fc.constantFrom(...ENV.map(([, p]) => p.at(-1)!)), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }))),
          fc.anything({ maxDepth: 2 }),
        ),
        (input) => {
          outcome(() => parseConfig(input as never));
          return true;
        },
      ),
      { runs: 1000 },
    );
  });

  it('a number setting given something that is not a number is refused, naming it (not read as 0 or 1)', async () => {
    const defaults = parseConfig({});
    const numeric: Array<{ name: string; path: string[]; input: (v: unknown) => unknown }> = [
      ...ENV.filter(([, path]) => typeof at(defaults, path) === 'number').map(([name, path]) => ({ name, path, input: (v: unknown) => nest(path, v) })),
      { name: 'PUSH_PORT', path: ['servers', '0', 'port'], input: (v: unknown) => ({ servers: [{ port: v }] }) },
      { name: 'PUSH_SERVERS', path: ['servers', '0', 'backlog'], input: (v: unknown) => ({ servers: [{ port: 0, backlog: v }] }) },
    ];
    const notANumber = fc.oneof(
      fc.constantFrom(null, true, false, [], {}, '', 'abc', '1O'),
      fc.nat({ max: 70_000 }).map((n) => [n]),
      fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r'), minLength: 1, maxLength: 3 }),
    );
    await fuzz(
      SUITE,
      'types',
      fc.property(fc.constantFrom(...numeric.map((n) => n.name)), notANumber, fc.boolean(), (name, value, viaEnv) => {
        const setting = numeric.find((n) => n.name === name)!;
        // Environment values are strings; an empty one means unset.
        const env = viaEnv && typeof value === 'string' && setting.name !== 'PUSH_SERVERS';
        if (env && value === '') return true;
        const result = env
          ? outcome(() => loadConfig({ argv: [], env: { [setting.name]: value } }))
          : outcome(() => parseConfig(setting.input(value) as never));
        const where = setting.path.join('.');
        if ('config' in result) assert.fail(`${where} = ${JSON.stringify(value)} was taken as ${String(at(result.config, setting.path))}`);
        assert.ok(result.problems.some((p) => p.startsWith(`${where} (env `)), result.problems.join('; '));
        return true;
      }),
      { runs: 500 },
    );
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['env', 'file', 'object', 'types'].includes(name), name);
  });
});
