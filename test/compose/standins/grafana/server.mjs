// Grafana stand-in: reads the provisioning that docker-compose.yml mounts, the way
// Grafana 11 does (datasources/*.yml, dashboards/*.yml providers of type "file", the
// dashboards under each provider's path, GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH),
// checks that every panel queries a provisioned data source, and serves a few of
// Grafana's HTTP API paths. /api/health answers 503 while the files disagree, so the
// compose healthcheck fails and `up --wait` with it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseYaml } from './yaml-subset.mjs';

const PROVISIONING = process.env.GF_PATHS_PROVISIONING ?? '/etc/grafana/provisioning';
const PORT = Number(process.env.GF_SERVER_HTTP_PORT ?? 3000);
const ROLES = ['Viewer', 'Editor', 'Admin'];

function yamlFiles(dir) {
  let names;
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => join(dir, n));
}

function jsonFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...jsonFiles(path));
    else if (name.endsWith('.json')) out.push(path);
  }
  return out;
}

function allPanels(panels = []) {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Everything provisioned, and what is wrong with it. */
function load() {
  const errors = [];
  const datasources = [];
  for (const file of yamlFiles(join(PROVISIONING, 'datasources'))) {
    try {
      for (const ds of parseYaml(readFileSync(file, 'utf8'))?.datasources ?? []) datasources.push({ ...ds, file });
    } catch (err) {
      errors.push(`${file}: ${err.message}`);
    }
  }
  if (datasources.length === 0) errors.push('no data source provisioned');
  for (const ds of datasources) {
    if (!ds.name || !ds.type || !ds.uid || !ds.url) errors.push(`${ds.file}: a data source needs name, type, uid and url`);
  }
  if (datasources.filter((ds) => ds.isDefault).length > 1) errors.push('more than one default data source');
  const byUid = new Map(datasources.map((ds) => [ds.uid, ds]));

  const dashboards = [];
  const providers = [];
  for (const file of yamlFiles(join(PROVISIONING, 'dashboards'))) {
    try {
      providers.push(...(parseYaml(readFileSync(file, 'utf8'))?.providers ?? []).map((p) => ({ ...p, file })));
    } catch (err) {
      errors.push(`${file}: ${err.message}`);
    }
  }
  if (providers.length === 0) errors.push('no dashboard provider provisioned');
  for (const p of providers) {
    if ((p.type ?? 'file') !== 'file') continue;
    const path = p.options?.path;
    let files = [];
    try {
      files = jsonFiles(path);
    } catch {
      errors.push(`provider ${p.name}: cannot read ${path}`);
    }
    if (files.length === 0) errors.push(`provider ${p.name}: no dashboard in ${path}`);
    for (const file of files) {
      let dashboard;
      try {
        dashboard = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        errors.push(`${file}: ${err.message}`);
        continue;
      }
      if (!dashboard.uid || !dashboard.title) errors.push(`${file}: a dashboard needs uid and title`);
      for (const panel of allPanels(dashboard.panels)) {
        if (panel.type === 'row') continue;
        for (const ref of [panel.datasource, ...(panel.targets ?? []).map((t) => t.datasource)]) {
          if (!ref) continue;
          const ds = byUid.get(ref.uid);
          if (!ds) errors.push(`${file}: panel "${panel.title}" uses data source uid ${ref.uid}, which is not provisioned`);
          else if (ref.type && ref.type !== ds.type) errors.push(`${file}: panel "${panel.title}" expects a ${ref.type} data source, ${ref.uid} is ${ds.type}`);
        }
      }
      dashboards.push({ dashboard, file, folderTitle: p.folder ?? 'General' });
    }
  }
  const uids = dashboards.map((d) => d.dashboard.uid);
  for (const uid of new Set(uids)) if (uids.filter((u) => u === uid).length > 1) errors.push(`dashboard uid ${uid} is provisioned twice`);

  const home = process.env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  if (home && !dashboards.some((d) => d.file === home)) errors.push(`GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ${home} is not a provisioned dashboard`);
  const role = process.env.GF_AUTH_ANONYMOUS_ORG_ROLE;
  if (role && !ROLES.includes(role)) errors.push(`GF_AUTH_ANONYMOUS_ORG_ROLE ${role} is not one of ${ROLES.join(', ')}`);
  return { errors, datasources, dashboards, home };
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Grafana's Prometheus health check: the query 1+1 through the data source URL. */
async function datasourceHealth(ds) {
  try {
    const r = await fetch(`${ds.url.replace(/\/$/, '')}/api/v1/query?query=1%2B1`, { signal: AbortSignal.timeout(5000) });
    const body = await r.json();
    if (r.ok && body.status === 'success') return [200, { status: 'OK', message: 'Successfully queried the Prometheus API.' }];
    return [400, { status: 'ERROR', message: `HTTP ${r.status}` }];
  } catch (err) {
    return [400, { status: 'ERROR', message: String(err.cause?.message ?? err.message) }];
  }
}

createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const state = load();
  const path = url.pathname;
  if (path === '/api/health') {
    if (state.errors.length > 0) return send(res, 503, { database: 'failing', errors: state.errors });
    return send(res, 200, { database: 'ok', version: 'stand-in' });
  }
  if (path === '/api/datasources') return send(res, 200, state.datasources.map(({ file: _file, ...ds }) => ds));
  let m = /^\/api\/datasources\/uid\/([^/]+)\/health$/.exec(path);
  if (m) {
    const ds = state.datasources.find((d) => d.uid === m[1]);
    if (!ds) return send(res, 404, { message: 'Data source not found' });
    const [status, body] = await datasourceHealth(ds);
    return send(res, status, body);
  }
  if (path === '/api/search') {
    return send(res, 200, state.dashboards.map((d) => ({ uid: d.dashboard.uid, title: d.dashboard.title, type: 'dash-db', folderTitle: d.folderTitle })));
  }
  m = /^\/api\/dashboards\/uid\/([^/]+)$/.exec(path);
  if (m || path === '/api/dashboards/home') {
    const d = m ? state.dashboards.find((x) => x.dashboard.uid === m[1]) : state.dashboards.find((x) => x.file === state.home);
    if (!d) return send(res, 404, { message: 'Dashboard not found' });
    return send(res, 200, { dashboard: d.dashboard, meta: { provisioned: true, provisionedExternalId: d.file, folderTitle: d.folderTitle } });
  }
  return send(res, 404, { message: 'Not found' });
}).listen(PORT, () => {
  const { errors, datasources, dashboards } = load();
  console.log(`grafana stand-in on :${PORT}: ${datasources.length} data source(s), ${dashboards.length} dashboard(s), ${errors.length} problem(s)`);
  for (const e of errors) console.log(`  ${e}`);
});

process.on('SIGTERM', () => process.exit(0));
