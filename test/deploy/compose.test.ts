import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import {
  composeMs,
  healthcheckArgv,
  hostPath,
  jetpullServices,
  loadCompose,
  mountedFile,
  natsServices,
  portMappings,
  serviceEnv,
  volumeMounts,
  writtenEnv,
  type PortMapping,
} from './lib/compose.ts';
import { assertJetStreamHealthcheck, healthcheckRequest, nodeScript, runHealthcheck } from './lib/healthcheck.ts';
import { interpolate, isSingleReference, referencedVariables } from './lib/interpolation.ts';
import { jetpullConfig, listenerPort } from './lib/jetpull-config.ts';
import { shutdownGraceMs } from './lib/shutdown-grace.ts';
import { natsSetting, natsSizes, readNatsConf } from './lib/nats-conf.ts';
import { assertNatsUsers } from './lib/nats-users.ts';
import { repoPath } from './lib/paths.ts';
import { mapping, sequence } from './lib/shape.ts';

/**
 * docker-compose.yml, the production-shaped stack: 3 NATS nodes, two gateways and a
 * publisher from one image, nginx, Prometheus and Grafana. Static: no Docker engine.
 */

const c = loadCompose('docker-compose.yml');
const { doc, services } = c;
const jetpull = jetpullServices(c);
const configs = new Map(jetpull.map(([name, svc]) => [name, jetpullConfig(name, svc)]));
const natsNodes = natsServices(c);
const natsConf = new Map(
  natsNodes.map(([name, svc]) => {
    const cmd = sequence(svc.command, `${name}.command`).map(String);
    assert.equal(cmd[0], '-c', `${name}: command is -c <config>`);
    return [name, readNatsConf(repoPath(mountedFile(c, svc, name, cmd[1]!)))];
  }),
);
const byRole = (role: Config['role']): string[] => [...configs].filter(([, cfg]) => cfg.role === role).map(([name]) => name);
const RESTARTING = ['unless-stopped', 'always'];

describe('deploy: docker-compose.yml', () => {
  it('has only known top-level keys, declared named volumes, pinned images, a healthcheck and a restart policy everywhere', () => {
    for (const key of Object.keys(doc)) {
      assert.ok(['services', 'volumes', 'networks', 'configs', 'secrets', 'name', 'include'].includes(key) || key.startsWith('x-'), `unknown top-level key ${key}`);
    }
    assert.ok(!('version' in doc), 'the top-level "version" key is obsolete in the Compose Specification');
    const declared = Object.keys(mapping(doc.volumes ?? {}, 'volumes'));
    for (const [name, svc] of Object.entries(services)) {
      assert.match(String(svc.image), /^[\w./-]+:[\w.-]+$/, `${name}: image with a tag`);
      assert.ok(!String(svc.image).endsWith(':latest'), `${name}: pin the image`);
      healthcheckArgv(svc, name);
      assert.ok(RESTARTING.includes(String(svc.restart)), `${name}: restart policy that survives a daemon restart, got ${String(svc.restart)}`);
      for (const m of volumeMounts(svc, name)) {
        if (m.named) assert.ok(declared.includes(m.source), `${name}: volume ${m.source} is declared`);
        else assert.ok(existsSync(repoPath(hostPath(c, m.source))), `${name}: ${m.source} exists`);
      }
    }
  });

  it('runs a 3-node NATS cluster with JetStream, one named volume per node, and routes to the other nodes', () => {
    assert.equal(natsNodes.length, 3, 'three NATS nodes');
    const names = natsNodes.map(([name]) => name);
    const clusterNames = new Set<string>();
    const dataVolumes = new Set<string>();
    for (const [name, svc] of natsNodes) {
      assert.match(String(svc.image), /^nats:2\.\d+/);
      const conf = natsConf.get(name)!;
      assert.equal(natsSetting(conf, 'server_name'), name, `${name}: server_name is the service name`);
      clusterNames.add(natsSetting(conf, 'cluster.name') ?? '');
      const clusterPort = natsSetting(conf, 'cluster.port') ?? '6222';
      const routes = sequence(conf.get('cluster.routes') ?? [], `${name}: cluster.routes`).map((r) => new URL(String(r)));
      assert.deepEqual(routes.map((u) => u.hostname).sort(), names.filter((n) => n !== name).sort(), `${name} routes to the other nodes`);
      for (const u of routes) assert.equal(u.port, clusterPort, `${name}: routes use the cluster port`);
      const storeDir = natsSetting(conf, 'jetstream.store_dir');
      assert.ok(storeDir, `${name}: JetStream on with a store_dir`);
      const data = volumeMounts(svc, name).find((m) => m.target === storeDir);
      assert.ok(data?.named, `${name}: store_dir is on a named volume`);
      dataVolumes.add(data.source);
      assertJetStreamHealthcheck(healthcheckArgv(svc, name), natsSetting(conf, 'http'), name);
      assert.ok(composeMs(svc.stop_grace_period, name) >= 10_000, `${name}: stop_grace_period of 10 s or more`);
    }
    assert.equal(clusterNames.size, 1, 'one cluster name on every node');
    assert.ok([...clusterNames][0], 'a cluster name');
    assert.equal(dataVolumes.size, 3, 'a data volume per node');
  });

  it("gives every node a payload limit above jetpull's and room for the stream below max_file_store", async () => {
    for (const [name, conf] of natsConf) {
      const maxFileStore = natsSetting(conf, 'jetstream.max_file_store');
      assert.ok(maxFileStore, `${name}: jetstream.max_file_store is set, so the stream limit can stay below it`);
      const sizes = await natsSizes(natsSetting(conf, 'max_payload'), maxFileStore);
      for (const cfg of configs.values()) {
        // The message stream accepts maxPayloadBytes + 4096 (headers); NATS must too.
        assert.ok(sizes.maxPayload >= cfg.limits.maxPayloadBytes + 4096, `${name}: max_payload ${sizes.maxPayload} is too small`);
        assert.ok(cfg.storage.streamMaxBytes > 0 && cfg.storage.streamMaxBytes < sizes.maxFileStore, `${name}: the stream (${cfg.storage.streamMaxBytes} B) is bounded below max_file_store (${sizes.maxFileStore} B)`);
      }
    }
  });

  it('runs jetpull as two gateways and a publisher from one image, connected to all three nodes with 3 replicas', () => {
    assert.deepEqual(byRole('gateway').sort(), ['gateway1', 'gateway2']);
    assert.deepEqual(byRole('publisher').sort(), ['publisher1']);
    assert.deepEqual(byRole('all'), []);
    for (const [name, svc] of jetpull) {
      const env = serviceEnv(svc, name);
      const cfg = configs.get(name)!;
      const urls = String(env.NATS_URL).split(',').map((u) => new URL(u.trim()));
      assert.deepEqual(urls.map((u) => u.hostname).sort(), natsNodes.map(([n]) => n).sort(), `${name}: NATS_URL lists every node`);
      for (const u of urls) assert.equal(u.port, natsSetting(natsConf.get(u.hostname)!, 'port') ?? '4222', `${name}: ${u.hostname}'s client port`);
      assert.equal(cfg.storage.streamReplicas, natsNodes.length, `${name}: one replica per node`);
      const key = writtenEnv(c, name).PUSH_SECURITY__KEY;
      assert.ok(typeof key === 'string' && isSingleReference(key), `${name}: PUSH_SECURITY__KEY comes from a host variable, not from the file (got ${String(key)})`);
      assert.equal(env.PUSH_ADMIN__HOSTNAME, '0.0.0.0', `${name}: admin listener reachable for Prometheus and the healthcheck`);
      assert.ok(cfg.admin.port > 0, `${name}: admin listener on`);
      assert.equal(cfg.processUniqueId, name, `${name}: a stable process id (the metrics' process label)`);
      for (const server of cfg.servers) assert.equal(server.hostname, '0.0.0.0', `${name}: listeners reachable from nginx`);
      const dependsOn = mapping(svc.depends_on, `${name}.depends_on`);
      for (const [node] of natsNodes) assert.equal(mapping(dependsOn[node], `${name}.depends_on.${node}`).condition, 'service_healthy', `${name} waits for ${node}`);
      assert.equal(svc.init, true, `${name}: init: true`);
    }
    // Every process declares the stream and buckets at start: they must agree, and share the key.
    const [first, ...rest] = [...configs];
    for (const [name, cfg] of rest) {
      assert.deepEqual(cfg.storage, first![1].storage, `${name} and ${first![0]}: the same storage settings`);
      assert.deepEqual(cfg.limits, first![1].limits, `${name} and ${first![0]}: the same limits`);
      const key = (c: Config): Pick<Config['security'], 'key' | 'algo'> => ({ key: c.security.key, algo: c.security.algo });
      assert.deepEqual(key(cfg), key(first![1]), `${name} and ${first![0]}: the same key`);
    }
  });

  it('logs every jetpull service into NATS as its role\'s user, with a password generated on the first start', () => {
    assertNatsUsers(c, natsNodes, jetpull.map(([name, svc]) => [name, svc, configs.get(name)!]));
  });

  it('serves subscriptions on the gateways and publishing on the publisher', () => {
    for (const name of byRole('gateway')) assert.ok(listenerPort(configs.get(name)!, 'sub'), `${name} has a listener with the sub route`);
    for (const name of byRole('publisher')) {
      const cfg = configs.get(name)!;
      assert.ok(listenerPort(cfg, 'pub'), `${name} has a listener with the pub route`);
      for (const server of cfg.servers) assert.equal(server.routes.sub, undefined, `${name}: no subscription route on a publisher`);
    }
  });

  it('checks readiness on the admin port with node (no curl in the image), and stops after the drain', async () => {
    const drainDeadline = Math.max(...[...configs.values()].map((cfg) => cfg.gateway.drainWindowMs)) + shutdownGraceMs();
    for (const [name, svc] of jetpull) {
      const script = nodeScript(healthcheckArgv(svc, name), name);
      const cfg = configs.get(name)!;
      // In the container: the service's environment, PUSH_ADMIN__PORT unset unless the file sets it.
      const target = healthcheckRequest(script, serviceEnv(svc, name));
      assert.deepEqual(target, { host: '127.0.0.1', port: cfg.admin.port, path: '/readyz' }, `${name}: the healthcheck asks /readyz on the admin port`);
      assert.ok(composeMs(svc.stop_grace_period, name) > drainDeadline, `${name}: stop_grace_period above drain window + shutdown grace (${drainDeadline} ms)`);
    }
    const script = nodeScript(healthcheckArgv(jetpull[0]![1], jetpull[0]![0]), jetpull[0]![0]);
    assert.equal(await runHealthcheck(script, 200), 0, 'ready: healthy');
    assert.equal(await runHealthcheck(script, 503), 1, 'not ready (draining, NATS away): unhealthy');
    assert.equal(await runHealthcheck(script, undefined), 1, 'nothing listening: unhealthy');
  });

  it('publishes only nginx publicly; the publish port, tools and NATS monitoring on 127.0.0.1; never admin or NATS client ports', () => {
    const nginx = services.nginx;
    assert.ok(nginx, 'an nginx service');
    const internal = new Set<number>([4222, 6222]);
    for (const cfg of configs.values()) internal.add(cfg.admin.port);
    for (const conf of natsConf.values()) {
      internal.add(Number(natsSetting(conf, 'port') ?? 4222));
      internal.add(Number(natsSetting(conf, 'cluster.port') ?? 6222));
    }
    const publicPorts: PortMapping[] = [];
    for (const [name, svc] of Object.entries(services)) {
      for (const p of portMappings(svc, name)) {
        assert.ok(!internal.has(p.container) && !internal.has(p.host ?? -1), `${name}: ${p.raw} publishes an internal port`);
        if (p.hostIp === '127.0.0.1') continue;
        assert.equal(name, 'nginx', `${name}: ${p.raw} is published on every interface`);
        publicPorts.push(p);
      }
    }
    for (const [name, svc] of jetpull) assert.deepEqual(portMappings(svc, name), [], `${name}: reached through nginx only`);
    assert.ok(publicPorts.length > 0, 'nginx has a public port');
    const publish = portMappings(nginx, 'nginx').filter((p) => p.container === 8895 || p.host === 8895);
    assert.ok(publish.length > 0, 'the publish port 8895 is published');
    for (const p of publish) assert.equal(p.hostIp, '127.0.0.1', `${p.raw}: the publish port stays off public interfaces`);
    for (const [name, port] of [['prometheus', 9090], ['grafana', 3000]] as const) {
      assert.ok(portMappings(services[name]!, name).some((p) => p.hostIp === '127.0.0.1' && p.container === port), `${name} on 127.0.0.1:${port}`);
    }
  });
});

describe('deploy: compose interpolation as these tests read it', () => {
  it('follows the Compose rules for defaults, required variables and $$', () => {
    const host = (env: Record<string, string>) => (name: string) => env[name];
    assert.equal(interpolate('${A:-x}', host({})), 'x');
    assert.equal(interpolate('${A:-x}', host({ A: '' })), 'x', ':- treats empty as unset');
    assert.equal(interpolate('${A-x}', host({ A: '' })), '', '- keeps an empty value');
    assert.equal(interpolate('${A:?set A}', host({ A: 'k' })), 'k');
    assert.throws(() => interpolate('${A:?set A}', host({})), /A is missing: set A/);
    assert.equal(interpolate('${A:+on}', host({ A: '1' })), 'on');
    assert.equal(interpolate('$$A $A', host({ A: 'v' })), '$A v');
    assert.deepEqual(referencedVariables('$$A ${B:-x} $C'), ['B', 'C']);
    assert.ok(isSingleReference('${KEY:?set KEY}') && isSingleReference('${KEY:-change-me}'));
    assert.ok(!isSingleReference('change-me') && !isSingleReference('x${KEY}') && !isSingleReference('$$'));
  });
});
