import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, envVariables, loadConfig } from '../../src/config/load.ts';
import { filePathOf, readPushConfigFile } from '../../src/config/push-config-file.ts';

const fixture = (name: string): string => new URL(`../fixtures/${name}`, import.meta.url).pathname;

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

describe('config', () => {
  it('defaults: one loopback listener on 8010 with every route, the reference limits and timers', () => {
    const { config } = loadConfig({ argv: [], env: {} });
    assert.equal(config.servers.length, 1);
    assert.deepEqual(config.servers[0], {
      port: 8010,
      hostname: '127.0.0.1',
      backlog: 1024,
      routes: { sub: '/bitrix/subws/', pub: '/bitrix/pub/', rest: '/bitrix/rest/', stat: '/server-stat/', api: '/bitrix/api/' },
    });
    assert.equal(config.nats.url, undefined);
    assert.equal(config.storage.messageTtlSec, 86_400);
    assert.equal(config.limits.maxPayloadBytes, 1_048_576);
    assert.equal(config.limits.maxConnPerChannel, 100);
    assert.equal(config.gateway.longPollTimeoutMs, 40_000);
    assert.equal(config.gateway.coalesceWindowMs, 0);
    assert.equal(config.gateway.coalesceMaxBytes, 65_536);
    assert.equal(config.gateway.coalesceMaxMessages, 256);
    assert.equal(config.gateway.pingIntervalMs, 120_000);
    assert.equal(config.security.algo, 'sha1');
    assert.ok(Object.isFrozen(config.gateway));
  });

  it('reads environment variables by schema path, NATS_URL and the listener shortcuts', () => {
    const { config } = loadConfig({
      argv: [],
      env: {
        NATS_URL: 'nats://a:4222,nats://b:4222',
        PUSH_SECURITY__KEY: 'k',
        PUSH_GATEWAY__LONG_POLL_TIMEOUT_MS: '1500',
        PUSH_STORAGE__STREAM_REPLICAS: '3',
        PUSH_HOSTNAME: '0.0.0.0',
        PUSH_PORT: '9000',
        PUSH_PUB_PORT: '8895',
      },
    });
    assert.equal(config.nats.url, 'nats://a:4222,nats://b:4222');
    assert.equal(config.security.key, 'k');
    assert.equal(config.gateway.longPollTimeoutMs, 1500);
    assert.equal(config.storage.streamReplicas, 3);
    assert.deepEqual(config.servers.map((s) => [s.hostname, s.port, Object.keys(s.routes).sort()]), [
      ['0.0.0.0', 9000, ['rest', 'sub']],
      ['127.0.0.1', 8895, ['api', 'pub', 'stat']],
    ]);
  });

  it('names every problem by its path and env variable, and rejects unknown PUSH_ variables', () => {
    const problems = problemsOf(() =>
      loadConfig({
        argv: [],
        env: { PUSH_GATEWAY__LONG_POLL_TIMEOUT_MS: 'soon', PUSH_LIMITS__MAX_PAYLOAD_BYTES: '-1', PUSH_GATEWAY__TYPO: '1' },
      }),
    );
    assert.equal(problems.length, 3, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('gateway.longPollTimeoutMs (env PUSH_GATEWAY__LONG_POLL_TIMEOUT_MS)')));
    assert.ok(problems.some((p) => p.startsWith('limits.maxPayloadBytes (env PUSH_LIMITS__MAX_PAYLOAD_BYTES)')));
    assert.ok(problems.some((p) => p.startsWith('PUSH_GATEWAY__TYPO: unknown setting')));
  });

  it('reads a BitrixVM Push server 2.0 config, including the misspelled storage TTL keys', () => {
    const { config, file } = loadConfig({ argv: ['--config', fixture('push-server-sub-8010.json')], env: {} });
    assert.deepEqual(config.servers, [
      { name: 'push-sub-8010', port: 8010, hostname: '127.0.0.1', backlog: 1024, routes: { sub: '/bitrix/subws/' } },
    ]);
    assert.equal(config.processUniqueId, 'push-sub-8010');
    assert.equal(config.security.key, 'Aq9y2fQ0bgvPcsE6xR7uLtK3mWz1HnJd');
    assert.equal(config.storage.messageTtlSec, 43_200, 'messageTLL (sic) is honoured');
    assert.equal(config.storage.onlineTtlSec, 120);
    assert.equal(config.limits.maxConnPerChannel, 100);
    assert.deepEqual(file?.ignoredKeys.sort(), ['clusterMode', 'debug', 'limits.maxRequestsPerSecond', 'storage.socket', 'storage.statDeltaMsec', 'storage.statTLLMsec', 'storage.type'].sort());
  });

  it('maps publishMode to the publisher role and keeps the algorithm and limits of the file', () => {
    const { config } = loadConfig({ argv: [`--config=${fixture('push-server-pub-9010.json')}`], env: {} });
    assert.equal(config.role, 'publisher');
    assert.equal(config.security.algo, 'sha256');
    assert.equal(config.limits.maxPayloadBytes, 2_097_152);
    assert.deepEqual(config.servers[0]!.routes, { pub: '/bitrix/pub/', rest: '/bitrix/rest/', stat: '/server-stat/' });
  });

  it('environment overrides the file, and jetpull settings live under the "jetpull" key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jetpull-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ security: { key: 'from-file' }, jetpull: { gateway: { coalesceWindowMs: 100 } } }));
    const { config } = loadConfig({ argv: ['--config', file], env: { PUSH_SECURITY__KEY: 'from-env' } });
    assert.equal(config.security.key, 'from-env');
    assert.equal(config.gateway.coalesceWindowMs, 100);
  });

  it('admin.demo is off unless asked for: "true"/"false" from the environment, a boolean from a file', () => {
    assert.equal(loadConfig({ argv: [], env: {} }).config.admin.demo, false);
    assert.equal(loadConfig({ argv: [], env: { PUSH_ADMIN__DEMO: 'true' } }).config.admin.demo, true);
    assert.equal(loadConfig({ argv: [], env: { PUSH_ADMIN__DEMO: 'false' } }).config.admin.demo, false, 'the string "false" is false');
    assert.deepEqual(problemsOf(() => loadConfig({ argv: [], env: { PUSH_ADMIN__DEMO: 'yes please' } })).length, 1);
    const dir = mkdtempSync(join(tmpdir(), 'jetpull-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ jetpull: { admin: { demo: true } } }));
    assert.equal(loadConfig({ argv: ['--config', file], env: {} }).config.admin.demo, true);
  });

  it('security.signedPublishing is off by default, and required needs a key', () => {
    assert.equal(loadConfig({ argv: [], env: {} }).config.security.signedPublishing, 'off');
    const on = loadConfig({ argv: [], env: { PUSH_SECURITY__SIGNED_PUBLISHING: 'required', PUSH_SECURITY__KEY: 'k' } }).config;
    assert.equal(on.security.signedPublishing, 'required');
    const [problem] = problemsOf(() => loadConfig({ argv: [], env: { PUSH_SECURITY__SIGNED_PUBLISHING: 'required' } }));
    assert.match(problem!, /security\.signedPublishing.*needs security\.key/);
    assert.equal(problemsOf(() => loadConfig({ argv: [], env: { PUSH_SECURITY__SIGNED_PUBLISHING: 'yes', PUSH_SECURITY__KEY: 'k' } })).length, 1);
  });

  it('refuses a file with wrong types, naming the path in the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jetpull-config-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ servers: [{ port: 'eighty' }], limits: { maxPayload: 'big' } }));
    const problems = problemsOf(() => loadConfig({ argv: ['--config', file], env: {} }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /servers\.0\.port/);
    assert.match(problems[0]!, /limits\.maxPayload/);
  });

  it('refuses unknown arguments, unknown hash algorithms and a listener without routes', () => {
    assert.match(problemsOf(() => loadConfig({ argv: ['--port', '1'], env: {} })).join('\n'), /--port: unknown argument/);
    assert.match(
      problemsOf(() => loadConfig({ argv: [], env: { PUSH_SECURITY__KEY: 'k', PUSH_SECURITY__ALGO: 'nope' } })).join('\n'),
      /security\.algo/,
    );
    assert.match(
      problemsOf(() => loadConfig({ argv: [], env: { PUSH_SERVERS: '[{"port":1,"routes":{}}]' } })).join('\n'),
      /servers\.0\.routes: serves no route/,
    );
  });

  it('refuses an outbox too small to replay the largest message', () => {
    assert.match(
      problemsOf(() => loadConfig({ argv: [], env: { PUSH_GATEWAY__MAX_OUTBOX_BYTES: '1048576' } })).join('\n'),
      /gateway\.maxOutboxBytes: must be at least twice limits\.maxPayloadBytes/,
    );
  });

  it('refuses a coalesced frame larger than the outbox', () => {
    assert.match(
      problemsOf(() => loadConfig({ argv: [], env: { PUSH_GATEWAY__COALESCE_MAX_BYTES: String(8 * 1_048_576) } })).join('\n'),
      /gateway\.coalesceMaxBytes: must not exceed gateway\.maxOutboxBytes/,
    );
  });

  it('every env variable name follows PUSH_<SECTION>__<FIELD>', () => {
    for (const [name, path] of envVariables()) {
      assert.match(name, /^PUSH_[A-Z0-9_]+$/);
      assert.ok(path.length >= 1);
    }
    assert.ok(envVariables().some(([n]) => n === 'PUSH_GATEWAY__MAX_OUTBOX_BYTES'));
  });
  it('command-line overrides win over the environment and the file', () => {
    const { config } = loadConfig({ argv: ['--config', fixture('push-server-pub-9010.json')], env: { PUSH_ROLE: 'gateway' }, overrides: { role: 'all' } });
    assert.equal(config.role, 'all');
  });

  it('a file records which Push server 2.0 key each setting came from; the rest lives under "jetpull"', () => {
    const { origins } = readPushConfigFile(fixture('push-server-sub-8010.json'));
    assert.deepEqual(filePathOf(['storage', 'messageTtlSec'], origins), ['storage', 'messageTLL'], 'the misspelt key it was read from');
    assert.deepEqual(filePathOf(['limits', 'maxPayloadBytes'], origins), ['limits', 'maxPayload']);
    assert.deepEqual(filePathOf(['servers', '0', 'routes', 'sub'], origins), ['servers', '0', 'routes', 'sub']);
    assert.deepEqual(filePathOf(['security', 'algo'], origins), ['jetpull', 'security', 'algo'], 'not in this file');
    assert.deepEqual(filePathOf(['gateway', 'pingIntervalMs'], origins), ['jetpull', 'gateway', 'pingIntervalMs']);
  });

  it('every problem carries its path and a fix', () => {
    try {
      loadConfig({ argv: [], env: { PUSH_LIMITS__MAX_PAYLOAD_BYTES: '0', PUSH_ROLE: 'boss' } });
      assert.fail('expected the configuration to be refused');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const byPath = new Map(err.issues.map((i) => [i.path.join('.'), i.fix]));
      assert.equal(byPath.get('limits.maxPayloadBytes'), 'use a value greater than 0');
      assert.equal(byPath.get('role'), 'use one of: "all", "gateway", "publisher"');
    }
  });
});
