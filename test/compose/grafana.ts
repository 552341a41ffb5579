import { query } from './prometheus.ts';

/**
 * The dashboard as the running stack serves it: the Grafana service's provisioned
 * dashboards and data sources over its HTTP API, every panel query evaluated by the
 * stack's real Prometheus, the way Grafana would send it.
 */

interface Panel {
  title?: string;
  type?: string;
  datasource?: { uid?: string; type?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
  panels?: Panel[];
}

export interface DashboardReport {
  problems: string[];
  dashboards: string[];
  queries: number;
  /** Queries that returned no series (counters nothing has incremented yet, for one). */
  empty: string[];
}

/** Grafana's built-in interval variables, as it expands them for a 1 h range and a 15 s scrape interval. */
function expand(expr: string): string {
  return expr
    .replace(/\$\{?__rate_interval\}?/g, '1m')
    .replace(/\$\{?__interval\}?/g, '15s')
    .replace(/\$\{?__range\}?/g, '1h')
    .replace(/\$\{?__range_s\}?/g, '3600');
}

function allPanels(panels: Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as unknown };
}

export async function checkDashboards(grafanaUrl: string, prometheusUrl: string): Promise<DashboardReport> {
  const problems: string[] = [];
  const empty: string[] = [];
  let queries = 0;

  const health = await getJson(`${grafanaUrl}/api/health`);
  if (health.status !== 200) problems.push(`/api/health ${health.status}: ${JSON.stringify(health.body)}`);

  const sources = (await getJson(`${grafanaUrl}/api/datasources`)).body as Array<{ uid: string; type: string; url: string }>;
  for (const ds of sources) {
    const h = await getJson(`${grafanaUrl}/api/datasources/uid/${ds.uid}/health`);
    if (h.status !== 200) problems.push(`data source ${ds.uid} (${ds.url}) does not answer from Grafana's network: ${JSON.stringify(h.body)}`);
  }
  const uids = new Set(sources.map((s) => s.uid));

  const found = (await getJson(`${grafanaUrl}/api/search`)).body as Array<{ uid: string; title: string }>;
  if (found.length === 0) problems.push('no dashboard is provisioned');
  for (const { uid } of found) {
    const { dashboard } = (await getJson(`${grafanaUrl}/api/dashboards/uid/${uid}`)).body as { dashboard: { panels?: Panel[]; templating?: { list?: unknown[] } } };
    for (const panel of allPanels(dashboard.panels)) {
      if (panel.type === 'row') continue;
      if (!panel.targets?.length) problems.push(`${uid}: panel "${panel.title}" has no query`);
      for (const t of panel.targets ?? []) {
        const dsUid = t.datasource?.uid ?? panel.datasource?.uid;
        if (!dsUid || !uids.has(dsUid)) problems.push(`${uid}: panel "${panel.title}" queries data source ${dsUid}, not provisioned`);
        const expr = expand(t.expr ?? '');
        if (/\$/.test(expr)) problems.push(`${uid}: panel "${panel.title}": unknown variable in ${t.expr}`);
        queries++;
        try {
          if ((await query(prometheusUrl, expr)).length === 0) empty.push(expr);
        } catch (err) {
          problems.push(`${uid}: panel "${panel.title}": Prometheus rejects ${expr}: ${(err as Error).message}`);
        }
      }
    }
  }
  return { problems, dashboards: found.map((d) => d.uid), queries, empty };
}
