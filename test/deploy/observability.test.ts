import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { jetpullServices, loadCompose, mountedFile, serviceEnv, writtenEnv } from './lib/compose.ts';
import { isSingleReference } from './lib/interpolation.ts';
import { jetpullConfig } from './lib/jetpull-config.ts';
import { knownMetrics } from './lib/metrics.ts';
import { readRepoFile, repoPath } from './lib/paths.ts';
import { promqlNames } from './lib/promql.ts';
import { mapping, sequence } from './lib/shape.ts';
import { readYaml } from './lib/yaml.ts';

/** Prometheus and Grafana of docker-compose.yml: scrape targets, data source, the jetpull dashboard. */

const c = loadCompose('docker-compose.yml');
const configs = new Map(jetpullServices(c).map(([name, s]) => [name, jetpullConfig(name, s)]));
const prometheus = c.services.prometheus!;
const grafana = c.services.grafana!;
const DATASOURCES = '/etc/grafana/provisioning/datasources/prometheus.yml';
const DASHBOARDS = '/etc/grafana/provisioning/dashboards/dashboards.yml';

interface Panel {
  title?: string;
  type?: string;
  datasource?: { uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}
const allPanels = (panels: Panel[] | undefined): Panel[] => (panels ?? []).flatMap((p) => [p, ...allPanels(p.panels)]);

/** The first data source of the provisioning file Grafana gets mounted. */
function provisionedDatasource(): Record<string, unknown> {
  const file = mountedFile(c, grafana, 'grafana', DATASOURCES);
  return mapping(sequence(mapping(readYaml(file), file).datasources, `${file}: datasources`)[0], `${file}: datasource`);
}

describe('deploy: Prometheus and Grafana', () => {
  it('scrapes /metrics on the admin port of every jetpull service', () => {
    const file = mountedFile(c, prometheus, 'prometheus', '/etc/prometheus/prometheus.yml');
    const prom = mapping(readYaml(file), file);
    const targets = new Set<string>();
    for (const job of sequence(prom.scrape_configs, 'scrape_configs').map((j) => mapping(j, 'scrape job'))) {
      if ((job.metrics_path ?? '/metrics') !== '/metrics') continue;
      for (const sc of sequence(job.static_configs ?? [], 'static_configs')) {
        for (const t of sequence(mapping(sc, 'static_config').targets, 'targets')) targets.add(String(t));
      }
    }
    for (const [name, cfg] of configs) assert.ok(targets.has(`${name}:${cfg.admin.port}`), `${file} scrapes ${name}:${cfg.admin.port}`);
  });

  it('provisions the Prometheus data source and the dashboard folder that compose mounts', () => {
    assert.equal(mountedFile(c, grafana, 'grafana', DATASOURCES), 'deploy/grafana/provisioning/datasources/prometheus.yml');
    const source = provisionedDatasource();
    assert.equal(source.type, 'prometheus');
    const url = new URL(String(source.url));
    assert.ok(url.hostname in c.services && /^prom\/prometheus:/.test(String(c.services[url.hostname]!.image)), 'the data source is the prometheus service');
    assert.equal(url.port, '9090');
    const file = mountedFile(c, grafana, 'grafana', DASHBOARDS);
    for (const p of sequence(mapping(readYaml(file), file).providers, 'providers')) {
      const path = String(mapping(mapping(p, 'provider').options, 'provider.options').path);
      assert.equal(mountedFile(c, grafana, 'grafana', `${path}/jetpull.json`), 'deploy/grafana/dashboards/jetpull.json', `${path} is the mounted dashboards folder`);
    }
    const home = serviceEnv(grafana, 'grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) assert.ok(existsSync(repoPath(mountedFile(c, grafana, 'grafana', home))), 'the home dashboard exists');
  });

  it('has a dashboard whose queries use only metrics jetpull exports, on the provisioned data source', async () => {
    const ds = provisionedDatasource();
    const dashboard = JSON.parse(readRepoFile('deploy/grafana/dashboards/jetpull.json')) as { uid?: string; title?: string; panels?: Panel[] };
    assert.ok(dashboard.uid && dashboard.title, 'the dashboard has a uid and a title');
    const { names, labels } = await knownMetrics();
    const used = new Set<string>();
    let queries = 0;
    for (const panel of allPanels(dashboard.panels)) {
      if (panel.type === 'row') continue;
      assert.ok(panel.targets && panel.targets.length > 0, `panel "${panel.title}" has queries`);
      assert.equal(panel.datasource?.uid, ds.uid, `panel "${panel.title}": provisioned data source`);
      for (const target of panel.targets) {
        assert.equal(target.datasource?.uid ?? ds.uid, ds.uid, `panel "${panel.title}": provisioned data source`);
        const expr = target.expr ?? '';
        const found = promqlNames(expr);
        assert.ok(found.metrics.length > 0, `panel "${panel.title}": ${expr} names a metric`);
        for (const m of found.metrics) {
          assert.ok(names.has(m), `panel "${panel.title}": ${m} is not a jetpull metric (src/metrics/metrics.ts)`);
          used.add(m);
        }
        for (const l of found.labels) assert.ok(labels.has(l), `panel "${panel.title}": label ${l} is not on any jetpull metric`);
        queries++;
      }
    }
    assert.ok(queries > 0, 'the dashboard has queries');
    for (const required of [
      'jetpull_connections',
      'jetpull_messages_delivered_total',
      'jetpull_publish_duration_seconds_bucket',
      'jetpull_publish_duration_seconds_count',
      'jetpull_replay_duration_seconds_count',
      'jetpull_replay_duration_seconds_bucket',
      'jetpull_slow_client_disconnects_total',
      'jetpull_admission_rejections_total',
      'jetpull_nats_connected',
      'jetpull_nats_reconnects_total',
      'jetpull_catch_ups_total',
      'jetpull_gaps_filled_total',
      'jetpull_process_cpu_seconds_total',
      'jetpull_process_resident_memory_bytes',
    ]) {
      assert.ok(used.has(required), `the dashboard shows ${required}`);
    }
  });

  it("keeps Grafana's admin password out of the file", () => {
    const password = writtenEnv(c, 'grafana').GF_SECURITY_ADMIN_PASSWORD;
    if (password !== undefined) assert.ok(typeof password === 'string' && isSingleReference(password), `the admin password comes from a host variable (got ${String(password)})`);
    assert.notEqual(serviceEnv(grafana, 'grafana').GF_AUTH_ANONYMOUS_ORG_ROLE, 'Admin', 'anonymous users are viewers at most');
  });
});
