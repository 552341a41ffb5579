import cluster from 'node:cluster';
import { startApp, type App } from '../app.ts';
import { ConfigError, loadConfig, WORKER_INDEX_ENV, workerIndex as workerIndexOf, type LoadedConfig, type LoadOptions } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { createRootLogger, type Logger } from '../log/logger.ts';
import { guardProcess } from '../log/process-guards.ts';
import { ListenError } from '../http/listen-error.ts';
import { NatsBinaryMissingError, startLocalNats, type LocalNats } from '../nats/local-server.ts';
import { VERSION } from '../version.ts';

/**
 * The server (`jetpull serve`, and `jetpull` with no command): configuration, the
 * root logger, NATS (a child nats-server when NATS_URL is unset), the application,
 * and signals.
 *
 * With `workers` > 1 this process is the primary of a node:cluster: it starts the
 * local nats-server if needed and forks that many workers, each a full jetpull
 * process sharing the listening ports (Node 20 has no SO_REUSEPORT); a worker runs
 * the same command line. SIGTERM drains gracefully and exits 0; an invalid
 * configuration exits 2, a failed start 1.
 */

/** Time allowed for a graceful shutdown beyond the drain window before exiting anyway. */
const SHUTDOWN_GRACE_MS = 15_000;

function load(options: LoadOptions): LoadedConfig {
  try {
    return loadConfig(options);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jetpull: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

async function startNats(config: Config, log: Logger): Promise<LocalNats> {
  const natsLog = log.child({ actor: 'nats-server' });
  const start = (port: number): Promise<LocalNats> =>
    startLocalNats({
      binary: config.nats.localBinary,
      storeDir: config.nats.localDataDir,
      port,
      maxPayloadBytes: Math.max(8 * 1024 * 1024, config.limits.maxPayloadBytes * 2),
      onLog: (line) => natsLog.debug({ line }, 'nats-server output'),
    });
  try {
    return await start(config.nats.localPort);
  } catch (err) {
    if (err instanceof NatsBinaryMissingError || config.nats.localPort === -1) throw err;
    log.warn({ port: config.nats.localPort }, 'port taken; starting the local nats-server on a free port');
    return start(-1);
  }
}

/** Starts the server and returns once it serves; it runs until a signal, then exits the process. */
export async function runServer(options: LoadOptions): Promise<void> {
  const loaded = load(options);
  const { config } = loaded;
  const workerIndex = cluster.isWorker ? workerIndexOf() : 0;
  const processUniqueId = config.workers > 1 && cluster.isWorker ? `${config.processUniqueId}-w${workerIndex}` : config.processUniqueId;
  const log = createRootLogger({ level: config.log.level, processUniqueId, version: VERSION });
  guardProcess(log);
  if (loaded.file && !cluster.isWorker) log.info({ file: loaded.file.path, ignoredKeys: loaded.file.ignoredKeys }, 'config file read');

  let stopping = false;
  let localNats: LocalNats | undefined;
  let natsUrl = config.nats.url;
  if (natsUrl === undefined) {
    try {
      localNats = await startNats(config, log);
    } catch (err) {
      log.fatal({ err }, 'cannot start nats-server');
      process.exit(1);
    }
    natsUrl = localNats.url;
    log.info({ url: natsUrl, storeDir: config.nats.localDataDir }, 'started local nats-server (set NATS_URL to use another)');
    void localNats.exited.then((code) => {
      if (!stopping) {
        log.fatal({ exitCode: code }, 'local nats-server exited');
        process.exit(1);
      }
    });
  }

  if (config.workers > 1 && cluster.isPrimary) {
    runPrimary(config, natsUrl, log, localNats, () => (stopping = true));
    return;
  }

  const effective: Config =
    workerIndex === 0
      ? { ...config, processUniqueId }
      : { ...config, processUniqueId, admin: { ...config.admin, port: config.admin.port > 0 ? config.admin.port + workerIndex : config.admin.port } };
  let app: App;
  try {
    app = await startApp(effective, log, natsUrl);
  } catch (err) {
    if (err instanceof ListenError) process.stderr.write(`jetpull: ${err.message}\n`);
    log.fatal({ err }, 'start-up failed');
    await localNats?.stop();
    process.exit(1);
  }

  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      log.error('shutdown took too long, exiting');
      process.exit(1);
    }, config.gateway.drainWindowMs + SHUTDOWN_GRACE_MS);
    hardStop.unref();
    void app
      .shutdown()
      .then(() => localNats?.stop())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // As nginx: SIGHUP reads renewed certificates (servers[].ssl) without dropping anyone.
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'reloading tls certificates');
    app.reloadTls();
  });
}

/** Forks the workers, restarts one that dies unexpectedly, and passes SIGTERM on to all. */
function runPrimary(config: Config, natsUrl: string, log: Logger, localNats: LocalNats | undefined, markStopping: () => void): void {
  let stopping = false;
  const fork = (index: number): void => {
    // Workers read NATS_URL like any process: they use the primary's local server if it started one.
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), NATS_URL: natsUrl });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      log.error({ worker: index, exitCode: code, signal }, 'worker exited, starting another');
      setTimeout(() => fork(index), 1_000);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);
  log.info({ workers: config.workers }, 'workers started');
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    markStopping();
    log.info({ signal }, 'shutting down workers');
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    const waitAll = setInterval(() => {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        clearInterval(waitAll);
        void (localNats?.stop() ?? Promise.resolve()).then(() => process.exit(0));
      }
    }, 100);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
}

