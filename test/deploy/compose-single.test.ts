import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  composeMs,
  healthcheckArgv,
  jetpullServices,
  loadCompose,
  mountedFile,
  portMappings,
  serviceEnv,
  volumeMounts,
  writtenEnv,
} from './lib/compose.ts';
import { assertJetStreamHealthcheck } from './lib/healthcheck.ts';
import { isSingleReference } from './lib/interpolation.ts';
import { DEFAULTS, jetpullConfig } from './lib/jetpull-config.ts';
import { shutdownGraceMs } from './lib/shutdown-grace.ts';
import { natsSetting, natsSizes, readNatsConf } from './lib/nats-conf.ts';
import { assertNatsUsers } from './lib/nats-users.ts';
import { repoPath } from './lib/paths.ts';
import { mapping, sequence } from './lib/shape.ts';

/** deploy/compose.single.yml: one NATS server and one jetpull process with every role. */

const c = loadCompose('deploy/compose.single.yml');
const nats = c.services.nats!;
const app = c.services.jetpull!;
const natsCmd = sequence(nats?.command, 'nats.command').map(String);
const natsConfFile = mountedFile(c, nats, 'nats', natsCmd[1] ?? '');
const conf = readNatsConf(repoPath(natsConfFile));

describe('deploy: deploy/compose.single.yml (single-node variant)', () => {
  it('runs nats with the deploy config, a named data volume and a JetStream healthcheck', () => {
    assert.match(String(nats.image), /^nats:2\.\d+/);
    assert.equal(natsCmd[0], '-c', 'nats: command is -c <config>');
    assert.equal(natsConfFile, 'deploy/nats/nats-server.conf', 'nats runs deploy/nats/nats-server.conf');
    const data = volumeMounts(nats, 'nats').find((m) => m.target === natsSetting(conf, 'jetstream.store_dir'));
    assert.ok(data?.named, 'store_dir is on a named volume');
    assert.ok(Object.keys(mapping(c.doc.volumes, 'volumes')).includes(data.source), 'the data volume is declared');
    assertJetStreamHealthcheck(healthcheckArgv(nats, 'nats'), natsSetting(conf, 'http'), 'nats');
    for (const p of portMappings(nats, 'nats')) assert.equal(p.hostIp, '127.0.0.1', `nats port ${p.raw} must stay on the loopback interface`);
  });

  it('builds jetpull from deploy/Dockerfile and starts it once nats is healthy', () => {
    assert.deepEqual(jetpullServices(c).map(([n]) => n), ['jetpull']);
    assert.equal(mapping(mapping(app.depends_on, 'jetpull.depends_on').nats, 'depends_on.nats').condition, 'service_healthy');
    assert.ok(['unless-stopped', 'always'].includes(String(app.restart)), `jetpull: restart policy, got ${String(app.restart)}`);
    assert.ok(composeMs(app.stop_grace_period, 'jetpull') > DEFAULTS.gateway.drainWindowMs + shutdownGraceMs(), 'stop_grace_period leaves time to drain');
    const full = loadCompose('docker-compose.yml');
    const [gatewayName, gateway] = jetpullServices(full)[0]!;
    assert.deepEqual(healthcheckArgv(app, 'jetpull'), healthcheckArgv(gateway, gatewayName), 'the same healthcheck as the full stack');
  });

  it('sets only known settings, and they load into the intended listeners', () => {
    const config = jetpullConfig('jetpull', app);
    const key = writtenEnv(c, 'jetpull').PUSH_SECURITY__KEY;
    assert.ok(typeof key === 'string' && isSingleReference(key), `PUSH_SECURITY__KEY comes from a host variable, not from the file (got ${String(key)})`);
    assert.deepEqual((config.nats.url ?? '').split(',').filter(Boolean).map((u) => new URL(u).hostname), ['nats'], 'jetpull connects to the nats service');
    assert.equal(config.servers.length, 2, 'a public and a trusted listener');
    const main = config.servers.find((s) => s.routes.sub !== undefined);
    const trusted = config.servers.find((s) => s.routes.pub !== undefined);
    assert.ok(main && trusted && main !== trusted, 'subscriptions and publishing on different listeners');
    assert.deepEqual([main.hostname, Object.keys(main.routes).sort()], ['0.0.0.0', ['rest', 'sub']], 'the public listener: browsers only');
    assert.deepEqual([trusted.hostname, Object.keys(trusted.routes).sort()], ['0.0.0.0', ['api', 'pub', 'stat']], "the trusted listener: the portal's backend");
    const published = new Map(portMappings(app, 'jetpull').map((p) => [p.container, p]));
    assert.ok(published.has(main.port), 'the browser port is published');
    assert.equal(published.get(trusted.port)?.hostIp, '127.0.0.1', 'the publish port stays off public interfaces');
    assert.ok(!published.has(config.admin.port), 'the admin port is not published');
  });

  it('logs jetpull (every role) into NATS as the user jetpull, with a password generated on the first start', () => {
    assertNatsUsers(c, [['nats', nats]], [['jetpull', app, jetpullConfig('jetpull', app)]]);
  });

  it('matches the NATS config: client port, payload size, store size', async () => {
    const config = jetpullConfig('jetpull', app);
    assert.equal(new URL(String(serviceEnv(app, 'jetpull').NATS_URL)).port, natsSetting(conf, 'port') ?? '4222', "NATS_URL names the server's client port");
    const maxFileStore = natsSetting(conf, 'jetstream.max_file_store');
    assert.ok(maxFileStore, 'jetstream.max_file_store is set, so the stream limit can stay below it');
    const sizes = await natsSizes(natsSetting(conf, 'max_payload'), maxFileStore);
    // The message stream accepts maxPayloadBytes + 4096 (headers); NATS must too.
    assert.ok(sizes.maxPayload >= config.limits.maxPayloadBytes + 4096, `max_payload ${sizes.maxPayload} is too small`);
    assert.ok(config.storage.streamMaxBytes > 0 && config.storage.streamMaxBytes < sizes.maxFileStore, `the stream (${config.storage.streamMaxBytes} B) is bounded below max_file_store (${sizes.maxFileStore} B)`);
  });
});
