import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jetpullServices, sleep, type SuiteContext } from '../context.ts';
import { checkDashboards, type DashboardReport } from '../grafana.ts';
import { targetsUp } from '../prometheus.ts';
import { note, record } from '../timings.ts';

/** Metrics as an operator sees them: Prometheus's targets and the provisioned dashboard. */
export function monitoringChecks(ctx: SuiteContext): void {
  const { prometheusUrl, grafanaUrl } = ctx.settings;

  it('Prometheus scrapes every jetpull process', { skip: prometheusUrl ? false : 'no --prometheus URL' }, async () => {
    // Every jetpull service of the compose file, at its admin port; against a deployment, whatever the job lists.
    const expected = ctx.settings.managed ? (await jetpullServices(ctx.compose)).map((s) => `${s}:9180`) : undefined;
    const started = Date.now();
    let up = new Map<string, number>();
    // The scrape interval is 15 s: a target is up after its first scrape.
    while (Date.now() - started < 60_000) {
      up = await targetsUp(prometheusUrl!, 'jetpull');
      const wanted = expected ?? [...up.keys()];
      if (wanted.length > 0 && wanted.every((t) => up.get(t) === 1)) break;
      await sleep(1_000);
    }
    record('Prometheus: every jetpull target up', Date.now() - started);
    const wanted = expected ?? [...up.keys()];
    assert.ok(wanted.length > 0, 'the jetpull job has targets');
    for (const target of wanted) assert.equal(up.get(target), 1, `up{instance="${target}"}`);
    if (expected) assert.deepEqual([...up.keys()].sort(), [...expected].sort(), 'the job scrapes exactly the jetpull services');
  });

  it('the Grafana dashboard matches its provisioning, and every panel query runs on Prometheus', { skip: grafanaUrl && prometheusUrl ? false : 'no --grafana URL' }, async () => {
    // These series exist once a process has been scraped twice (rate() needs two samples):
    // an empty answer after that is a wrong query.
    const always = ['jetpull_connections', 'jetpull_nats_connected', 'jetpull_process_resident_memory_bytes', 'jetpull_process_cpu_seconds_total'];
    const emptyOf = (r: DashboardReport): string[] => r.empty.filter((e) => always.some((m) => e.includes(m)));
    const started = Date.now();
    let report = await checkDashboards(grafanaUrl!, prometheusUrl!);
    while (report.problems.length === 0 && emptyOf(report).length > 0 && Date.now() - started < 45_000) {
      await sleep(3_000);
      report = await checkDashboards(grafanaUrl!, prometheusUrl!);
    }
    note('Grafana: panel queries run / with no data yet', `${report.queries} / ${report.empty.length}`);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.dashboards, ['jetpull']);
    assert.ok(report.queries >= 10, `${report.queries} queries`);
    assert.deepEqual(emptyOf(report), [], 'queries of series every process exports return data');
  });
}
