import { startApp, type App } from './app.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import { createRootLogger } from './log/logger.ts';
import { NatsBinaryMissingError, startLocalNats, type LocalNats } from './nats/local-server.ts';
import { VERSION } from './version.ts';

/**
 * Process entry: configuration, the root logger, NATS (a child nats-server when
 * NATS_URL is unset), the application, and signals. SIGTERM/SIGINT stop it cleanly
 * and exit 0.
 */
async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jetpull: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { config } = loaded;
  const log = createRootLogger({ level: config.log.level, processUniqueId: config.processUniqueId, version: VERSION });
  if (loaded.file) log.info({ file: loaded.file.path, ignoredKeys: loaded.file.ignoredKeys }, 'config file read');

  let stopping = false;
  let localNats: LocalNats | undefined;
  let natsUrl = config.nats.url;
  if (natsUrl === undefined) {
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
      localNats = await start(config.nats.localPort);
    } catch (err) {
      if (err instanceof NatsBinaryMissingError || config.nats.localPort === -1) {
        log.fatal({ err }, 'cannot start nats-server');
        process.exit(1);
      }
      log.warn({ port: config.nats.localPort }, 'port taken; starting the local nats-server on a free port');
      localNats = await start(-1);
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

  let app: App;
  try {
    app = await startApp(config, log, natsUrl);
  } catch (err) {
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
    }, 30_000);
    hardStop.unref();
    void app
      .stop()
      .then(() => localNats?.stop())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

await main();
