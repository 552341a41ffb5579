import { startApp, type App } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config, ConfigInput } from '../../src/config/schema.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { TEST_KEY } from './channels.ts';
import { LogSink } from './log-sink.ts';

export interface TestApp {
  readonly app: App;
  readonly config: Config;
  readonly logs: LogSink;
  /** http://127.0.0.1:<port> of the first listener. */
  readonly base: string;
  /** ws://127.0.0.1:<port> of the first listener. */
  readonly wsBase: string;
  readonly port: number;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

type Overrides = Omit<ConfigInput, 'nats'> & { nats?: ConfigInput['nats'] };

/**
 * The whole application in this process against a test NATS server, on a free port,
 * with the security key `testkey` and logs captured in memory.
 */
export async function startTestApp(natsUrl: string, overrides: Overrides = {}): Promise<TestApp> {
  const config = parseConfig({
    servers: [{ port: 0, hostname: '127.0.0.1' }],
    security: { key: TEST_KEY },
    admin: { port: 0 },
    ...overrides,
    log: { level: 'debug', ...overrides.log },
    nats: { url: natsUrl, ...overrides.nats },
  });
  const logs = new LogSink();
  const log = createRootLogger({ level: config.log.level, processUniqueId: config.processUniqueId, version: 'test' }, logs);
  const app = await startApp(config, log, natsUrl);
  const port = app.addresses[0]!.port;
  const stop = (): Promise<void> => app.stop();
  return {
    app,
    config,
    logs,
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    port,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
