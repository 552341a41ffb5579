import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderEnvExample } from '../../deploy/gen-env-example.ts';
import { loadConfig } from '../../src/config/load.ts';
import { MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET } from '../../streams/index.ts';
import { referencedVariables } from './lib/interpolation.ts';
import { DEFAULTS, KNOWN_ENV } from './lib/jetpull-config.ts';
import { readRepoFile, repoPath } from './lib/paths.ts';
import { readYaml } from './lib/yaml.ts';

/** Environment variable names in the deployment files, and deploy/jetpull.env.example. */

const COMPOSE_FILES = ['docker-compose.yml', 'deploy/compose.single.yml'];

/** Every string of a parsed YAML document. */
const strings = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : value !== null && typeof value === 'object' ? Object.values(value).flatMap(strings) : [];

describe('deploy: environment variables', () => {
  it('names only known settings in the compose files and deploy/', () => {
    const files = [
      ...COMPOSE_FILES,
      'deploy/README.md',
      'deploy/Dockerfile',
      'deploy/nats/nats-server.conf',
      ...readdirSync(repoPath('deploy/nats/cluster')).map((f) => `deploy/nats/cluster/${f}`),
      'deploy/nginx/nginx.conf',
      'deploy/prometheus/prometheus.yml',
      'deploy/jetpull.env.example',
    ];
    // Compose's own ${VAR} interpolation variables are set on the host, not in jetpull.
    const composeVars = new Set(COMPOSE_FILES.flatMap((f) => strings(readYaml(f)).flatMap(referencedVariables)));
    for (const v of composeVars) assert.ok(!KNOWN_ENV.has(v), `${v} is a jetpull setting; do not reuse it as a compose variable`);
    const streamNames = new Set([MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET]);
    for (const file of files) {
      const hostVarsAllowed = COMPOSE_FILES.includes(file) || file === 'deploy/README.md';
      for (const [name] of readRepoFile(file).matchAll(/\b(?:PUSH_[A-Z0-9_]*[A-Z0-9]|NATS_URL)\b/g)) {
        const allowed = KNOWN_ENV.has(name) || streamNames.has(name) || (hostVarsAllowed && composeVars.has(name));
        assert.ok(allowed, `${file}: ${name} is not a jetpull setting`);
      }
    }
  });

  it('deploy/jetpull.env.example is the current output of deploy/gen-env-example.ts', () => {
    assert.ok(
      readRepoFile('deploy/jetpull.env.example') === renderEnvExample(),
      'deploy/jetpull.env.example is stale: run npx tsx deploy/gen-env-example.ts > deploy/jetpull.env.example',
    );
  });

  it('deploy/jetpull.env.example lists every setting, holds no secret, and its examples load', () => {
    const text = renderEnvExample();
    const assigned = new Map([...text.matchAll(/^#([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const name of KNOWN_ENV) assert.ok(assigned.has(name), `${name} is missing`);
    for (const secret of ['PUSH_SECURITY__KEY', 'PUSH_SECURITY__PREVIOUS_KEYS', 'PUSH_NATS__PASSWORD', 'PUSH_NATS__TOKEN']) assert.equal(assigned.get(secret), '', `${secret} has a value`);
    const env = Object.fromEntries([...assigned].filter(([, v]) => v !== ''));
    const { config } = loadConfig({ argv: [], env });
    assert.equal(config.servers.length, 2, 'the PUSH_SERVERS example defines two listeners');
    assert.deepEqual({ ...config, servers: [], processUniqueId: '' }, { ...DEFAULTS, servers: [], processUniqueId: '' }, 'the listed values are the defaults');
  });
});
