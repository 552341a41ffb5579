import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { READ_KEYS } from '../../src/config/push-config-file.ts';
import { ConfigSchema, ListenerSchema } from '../../src/config/schema.ts';
import { MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET } from '../../streams/index.ts';
import { KNOWN_ENV } from './lib/jetpull-config.ts';
import { knownMetrics } from './lib/metrics.ts';
import { readRepoFile, repoPath } from './lib/paths.ts';

/**
 * The documentation names only what exists: settings (by environment variable and by
 * path), error codes, metrics, repository files, npm scripts, and links between the
 * documents. A renamed setting or file fails here instead of leaving a doc that lies.
 */

const DOCS = ['README.md', ...readdirSync(repoPath('docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const FILES = [...DOCS, ...readdirSync(repoPath('deploy/systemd')).map((f) => `deploy/systemd/${f}`)];

/** Compose's own interpolation variables (set on the host, not read by jetpull). */
const COMPOSE_VARIABLES = new Set(['PUSH_SECURITY_KEY', 'PUSH_LOG_LEVEL']);
/** Push server 2.0 file keys jetpull reads no value from; it lists them at start as ignoredKeys. */
const IGNORED_FILE_KEYS = new Set(['storage.type', 'storage.socket', 'storage.host', 'storage.port', 'storage.statTLLMsec', 'storage.statDeltaMsec', 'limits.maxRequestsPerSecond']);

/** Dotted paths of every setting in the schema, `servers[].<field>` for listeners. */
function settingPaths(): Set<string> {
  const out = new Set<string>();
  const walk = (schema: z.ZodType, path: string): void => {
    let s: z.ZodType = schema;
    while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) s = (s as unknown as { def: { innerType: z.ZodType } }).def.innerType;
    if (path !== '') out.add(path);
    if (s instanceof z.ZodObject) for (const [k, child] of Object.entries(s.shape as Record<string, z.ZodType>)) walk(child, path === '' ? k : `${path}.${k}`);
  };
  walk(ConfigSchema, '');
  walk(ListenerSchema, 'servers[]');
  return out;
}

const errorCodes = new Set(readRepoFile('src/errors/app-error.ts').match(/PUSH_ERR_[A-Z_]+/g) ?? []);
const scripts = new Set(Object.keys((JSON.parse(readRepoFile('package.json')) as { scripts: Record<string, string> }).scripts));

/** GitHub's anchor for a heading. */
const anchor = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
const anchorsOf = (file: string): Set<string> => new Set([...readRepoFile(file).matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));

describe('docs: what they name exists', () => {
  it('every environment variable and error code is one jetpull has', () => {
    const streams = new Set([MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET]);
    for (const file of FILES) {
      for (const m of readRepoFile(file).matchAll(/\b(PUSH_[A-Z0-9_]*[A-Z0-9]|NATS_URL)(_{1,2}[*…])?/g)) {
        const [, name, wildcard] = m as unknown as [string, string, string | undefined];
        if (wildcard !== undefined) {
          // PUSH_STORAGE__*, PUSH_ERR_…: a family of names; at least one must exist.
          const prefix = name + wildcard.slice(0, -1);
          assert.ok([...KNOWN_ENV, ...errorCodes].some((v) => v.startsWith(prefix)), `${file}: nothing starts with ${prefix}`);
          continue;
        }
        const known = KNOWN_ENV.has(name) || streams.has(name) || COMPOSE_VARIABLES.has(name) || errorCodes.has(name);
        assert.ok(known, `${file}: ${name} is not a jetpull setting, stream or error code`);
      }
    }
  });

  it('every setting path (limits.maxPayloadBytes, servers[].routes, …) is in src/config/schema.ts or a Push server 2.0 file key', () => {
    const paths = settingPaths();
    const sections = [...paths].filter((p) => !p.includes('.')).join('|');
    const pattern = new RegExp(`(?<![\\w/.-])((?:${sections}|servers\\[\\])\\.[a-z][A-Za-z]*)(?![\\w(])`, 'g');
    const fileKeys = new Set([...READ_KEYS, ...IGNORED_FILE_KEYS]);
    let seen = 0;
    for (const file of FILES) {
      for (const [, path] of readRepoFile(file).matchAll(pattern)) {
        if (/\.(ts|js|json|md|conf|yml|txt)$/.test(path!)) continue;
        seen++;
        assert.ok(paths.has(path!) || fileKeys.has(path!), `${file}: ${path} is not a setting`);
      }
    }
    assert.ok(seen > 50, `the pattern found ${seen} setting paths; it has stopped matching`);
  });

  it('every jetpull_* metric is exported', async () => {
    const { names } = await knownMetrics();
    for (const file of FILES) {
      // A histogram is named by its base name in prose; Prometheus sees its _count, _sum and _bucket series.
      for (const [name] of readRepoFile(file).matchAll(/\bjetpull_[a-z0-9_]+\b/g)) assert.ok(names.has(name) || names.has(`${name}_count`), `${file}: ${name} is not a metric`);
    }
  });

  it('every repository path and npm script exists', () => {
    for (const file of FILES) {
      const text = readRepoFile(file);
      for (const [, path] of text.matchAll(/`((?:src|test|deploy|bench|streams|scripts|docs)\/[^`\s*<>…]*)`/g)) {
        assert.ok(existsSync(repoPath(path!)), `${file}: ${path} does not exist`);
      }
      for (const [, script] of text.matchAll(/\bnpm run ([a-z:]+)/g)) assert.ok(scripts.has(script!), `${file}: npm run ${script} is not a script`);
    }
  });

  it('relative links resolve, anchors included, and README links every document in docs/', () => {
    for (const file of DOCS) {
      const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
      for (const [, target] of readRepoFile(file).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [rel, hash] = target!.split('#') as [string, string | undefined];
        const resolved = rel === '' ? file : new URL(rel, `file:///${dir}`).pathname.slice(1);
        assert.ok(existsSync(repoPath(resolved)), `${file}: link ${target} points at nothing`);
        if (hash !== undefined && resolved.endsWith('.md')) assert.ok(anchorsOf(resolved).has(hash), `${file}: ${resolved} has no heading #${hash}`);
      }
    }
    const readme = readRepoFile('README.md');
    for (const doc of DOCS.filter((d) => d.startsWith('docs/'))) assert.ok(readme.includes(`](${doc})`), `README.md does not link ${doc}`);
  });
});
