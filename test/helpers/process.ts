import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_KEY } from './channels.ts';
import { freePort } from './ports.ts';
import { eventually } from './wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** jetpull as a real process (`node --import tsx src/main.ts`), for tests of signals and roles. */
export interface JetpullProcess {
  readonly base: string;
  readonly wsBase: string;
  readonly port: number;
  readonly adminBase: string;
  readonly child: ChildProcess;
  /** Every log line the process wrote, parsed. */
  readonly logs: Array<Record<string, unknown>>;
  /** Exit code once it exited. */
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Listener and admin ports; free ones when left out (given: a restart on the same ports). */
export interface JetpullPorts {
  port: number;
  adminPort: number;
}

/** jetpull with the test key; `args` is its command line (none: the server, as `npm start`). */
export async function spawnJetpull(natsUrl: string, env: Record<string, string> = {}, opts: { ports?: JetpullPorts; args?: string[] } = {}): Promise<JetpullProcess> {
  const port = opts.ports?.port ?? (await freePort());
  const adminPort = opts.ports?.adminPort ?? (await freePort());
  return start(opts.args ?? [], port, adminPort, {
    NATS_URL: natsUrl,
    PUSH_PORT: String(port),
    PUSH_HOSTNAME: '127.0.0.1',
    PUSH_SECURITY__KEY: TEST_KEY,
    PUSH_ADMIN__PORT: String(adminPort),
    PUSH_LOG__LEVEL: 'info',
    ...env,
  });
}

/**
 * jetpull started as BitrixVM starts Push server 2.0: `--config <file>` and nothing
 * else but NATS_URL; its listener and admin port come from the file (the admin port
 * derived from the first listener's).
 */
export function spawnJetpullWithConfig(natsUrl: string, file: string, port: number, adminPort: number): Promise<JetpullProcess> {
  return start(['--config', file], port, adminPort, { NATS_URL: natsUrl });
}

async function start(args: string[], port: number, adminPort: number, env: Record<string, string>): Promise<JetpullProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let partial = '';
  const onData = (chunk: Buffer): void => {
    partial += chunk.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ unparsed: line });
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const handle: JetpullProcess = {
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    port,
    adminBase: `http://127.0.0.1:${adminPort}`,
    child,
    logs,
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop() {
      handle.kill('SIGTERM');
      const timer = setTimeout(() => handle.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await eventually(
      `jetpull on port ${port} to be ready`,
      async () => {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${JSON.stringify(logs.slice(-5))}`);
        const res = await fetch(`${handle.adminBase}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      30_000,
      100,
    );
  } catch (err) {
    handle.kill('SIGKILL');
    throw err;
  }
  return handle;
}
