import assert from 'node:assert/strict';
import { envVariables, loadConfig, parseConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/schema.ts';
import type { Mapping } from './shape.ts';
import { serviceEnv } from './compose.ts';
import { readDockerfile, stageEnv } from './dockerfile.ts';

/** Variables outside the PUSH_<SECTION>__<FIELD> pattern that src/config/load.ts also reads. */
const SHORTCUTS = ['NATS_URL', 'PUSH_SERVERS', 'PUSH_PORT', 'PUSH_HOSTNAME', 'PUSH_PUB_PORT', 'PUSH_PUB_HOSTNAME'];

/** Every environment variable jetpull reads. */
export const KNOWN_ENV: ReadonlySet<string> = new Set([...envVariables().map(([name]) => name), ...SHORTCUTS]);

export const DEFAULTS: Config = parseConfig({});

/** The jetpull settings the image itself sets (ENV of the final stage of deploy/Dockerfile). */
const IMAGE_ENV: Record<string, string> = Object.fromEntries(
  [...stageEnv(readDockerfile('deploy/Dockerfile').at(-1)!)].filter(([k]) => k.startsWith('PUSH_') || k === 'NATS_URL'),
);

/** The configuration a compose service starts with: the image's and its own environment through the real loader. */
export function jetpullConfig(name: string, service: Mapping): Config {
  const env = serviceEnv(service, name);
  for (const key of Object.keys(env)) assert.ok(KNOWN_ENV.has(key), `${name}: ${key} is not a jetpull setting`);
  return loadConfig({ argv: [], env: { ...IMAGE_ENV, ...env } }).config;
}

/** The port of the listener that serves a route, if any. */
export function listenerPort(config: Config, route: 'sub' | 'pub' | 'rest' | 'stat'): number | undefined {
  return config.servers.find((s) => s.routes[route] !== undefined)?.port;
}
