import { fileURLToPath } from 'node:url';

/**
 * What one run of the compose suite works on, from the environment that
 * test/compose/run.sh sets. Two modes:
 * - managed: the suite runs docker-compose.yml on its own engine and may stop, kill and
 *   recreate services;
 * - against a deployment (`run.sh --against …`): only the checks that need no control
 *   over the containers, through the URLs given.
 */
export interface Settings {
  readonly managed: boolean;
  /** nginx's public server: /bitrix/subws/, /bitrix/sub/, /bitrix/rest/. */
  readonly publicUrl: string;
  /** nginx's internal server: /bitrix/pub/, /server-stat/. */
  readonly publishUrl: string;
  readonly prometheusUrl: string | undefined;
  readonly grafanaUrl: string | undefined;
  /** PUSH_SECURITY_KEY of the stack: clients sign their CHANNEL_ID with it. */
  readonly key: string;
  /** Fresh `up`s in the start-up check, counting the first one. */
  readonly freshUps: number;
  readonly compose: ComposeSettings;
}

export interface ComposeSettings {
  readonly project: string;
  /** docker-compose.yml and the generated override, relative to the repository root. */
  readonly files: string[];
  readonly root: string;
  /** The other compose version's plugin binary, for the check that both accept the file. */
  readonly altComposeBin: string | undefined;
  /** The stand-in NATS image, for the testcontainers check. */
  readonly natsImage: string | undefined;
  /** Where the run keeps its logs (kept by run.sh when the run fails). */
  readonly runDir: string | undefined;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function loadSettings(): Settings {
  const managed = env('JETPULL_E2E_AGAINST') === undefined;
  const key = env('PUSH_SECURITY_KEY');
  if (!key) throw new Error('PUSH_SECURITY_KEY must be set (the key the stack signs channels with)');
  const override = env('JETPULL_COMPOSE_OVERRIDE');
  return {
    managed,
    publicUrl: (env('JETPULL_E2E_AGAINST') ?? 'http://127.0.0.1:8080').replace(/\/$/, ''),
    publishUrl: (env('JETPULL_E2E_PUBLISH_URL') ?? 'http://127.0.0.1:8895').replace(/\/$/, ''),
    prometheusUrl: env('JETPULL_E2E_PROMETHEUS_URL') ?? (managed ? 'http://127.0.0.1:9090' : undefined),
    grafanaUrl: env('JETPULL_E2E_GRAFANA_URL') ?? (managed ? 'http://127.0.0.1:3000' : undefined),
    key,
    freshUps: Number(env('JETPULL_COMPOSE_FRESH_UPS') ?? 5),
    compose: {
      project: env('JETPULL_COMPOSE_PROJECT') ?? 'jetpull-e2e',
      files: ['docker-compose.yml', ...(override ? [override] : [])],
      root: ROOT,
      altComposeBin: env('JETPULL_COMPOSE_ALT_BIN'),
      natsImage: env('JETPULL_TEST_NATS_IMAGE'),
      runDir: env('JETPULL_COMPOSE_RUN_DIR'),
    },
  };
}
