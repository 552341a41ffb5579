import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { registerCleanup } from './cleanup.ts';
import { BenchSetupError, isLoopbackHost } from './env.ts';
import type { SampleTarget } from './proc.ts';
import { log, nowMs, sleep } from './util.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/** The HMAC key the benchmark's own jetpull is started with. */
export const DEFAULT_KEY = 'benchkey-0123456789abcdefghijklmnopqrstuvwxyz';

export interface DeploymentOptions {
  scenario: string;
  url?: string | undefined;
  nats?: string | undefined;
  key?: string | undefined;
  serverPids?: string | undefined;
  /** PUSH_* settings for the jetpull child (ignored for an external deployment). */
  env?: Record<string, string>;
  logLevel: string;
  /** Where jetpull's stdout/stderr go; default a file in a temporary directory. */
  serverLog?: string | undefined;
  /** `dist`: the compiled build, as production runs it; `tsx`: the sources through tsx. */
  runtime?: 'dist' | 'tsx';
  /** Extra node flags for the jetpull child (profiling). */
  nodeArgs?: readonly string[];
  /** The nats-server binary to start (name on PATH or path). */
  natsBinary?: string | undefined;
}

export interface Deployment {
  readonly external: boolean;
  readonly host: string;
  readonly port: number;
  readonly natsUrl: string | undefined;
  readonly key: string;
  /** Processes whose CPU and RSS are reported (jetpull, nats-server). */
  readonly targets: SampleTarget[];
  readonly jetpullPid: number | undefined;
  readonly logFile: string | undefined;
  /** Throws if the jetpull child has exited. */
  assertAlive(): void;
  /** Lines jetpull logged at warn level and above. */
  logCounts(): { warn: number; error: number; fatal: number };
  sign(message: string): string;
  stop(): Promise<void>;
}

export function signWith(key: string, message: string): string {
  return createHmac('sha1', key).update(message).digest('hex');
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

/** Whether jetpull knows a setting (deploy/jetpull.env.example lists every one). */
export function envExampleHas(name: string): boolean {
  try {
    return readFileSync(join(REPO_ROOT, 'deploy', 'jetpull.env.example'), 'utf8').includes(`#${name}=`);
  } catch {
    return false;
  }
}

function httpGetStatus(host: string, port: number, path: string): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = request({ host, port, path, method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode ?? 0);
    });
    req.on('error', () => resolveStatus(0));
    req.on('timeout', () => {
      req.destroy();
      resolveStatus(0);
    });
    req.end();
  });
}

/** Kills a child and waits for it, escalating to SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts nats-server (temporary store, removed afterwards) and jetpull as a child
 * process (`node --import tsx src/main.ts`), or describes an external deployment
 * given with --url/--nats/--key (and --server-pids for CPU/RSS).
 */
export async function startDeployment(opts: DeploymentOptions): Promise<Deployment> {
  if (opts.url !== undefined) return externalDeployment(opts);
  const key = opts.key ?? DEFAULT_KEY;
  const storeDir = mkdtempSync(join(tmpdir(), 'jetpull-bench-store-'));
  const removeStore = (): void => rmSync(storeDir, { recursive: true, force: true });
  const unregisterStore = registerCleanup('nats store', async () => removeStore(), removeStore);
  let logFile = opts.serverLog;
  let logDir: string | undefined;
  if (logFile === undefined) {
    logDir = mkdtempSync(join(tmpdir(), `jetpull-bench-${opts.scenario}-`));
    logFile = join(logDir, 'jetpull.log');
  } else {
    mkdirSync(resolve(logFile, '..'), { recursive: true });
  }
  const logStream: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const counts = { warn: 0, error: 0, fatal: 0 };
  const countLevels = (text: string): void => {
    for (const m of text.matchAll(/"level":(\d+)/g)) {
      const level = Number(m[1]);
      if (level >= 60) counts.fatal++;
      else if (level >= 50) counts.error++;
      else if (level >= 40) counts.warn++;
    }
  };

  const nats: LocalNats = await startLocalNats({
    ...(opts.natsBinary === undefined ? {} : { binary: opts.natsBinary }),
    storeDir,
    port: -1,
    onLog: (line) => logStream.write(`[nats-server] ${line}\n`),
  });
  const unregisterNats = registerCleanup(
    'nats-server',
    () => nats.stop(),
    () => {
      nats.process.kill('SIGKILL');
    },
  );

  const port = await freePort();
  // The internal admin listener (when this jetpull has one) gets a free port, so runs never collide on it.
  const adminEnv: Record<string, string> = envExampleHas('PUSH_ADMIN__PORT') ? { PUSH_ADMIN__PORT: '0' } : {};
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NATS_URL: nats.url,
    PUSH_PORT: String(port),
    PUSH_HOSTNAME: '127.0.0.1',
    PUSH_SECURITY__KEY: key,
    PUSH_LOG__LEVEL: opts.logLevel,
    ...adminEnv,
    ...opts.env,
  };
  const entry = opts.runtime === 'tsx' ? ['--import', 'tsx', 'src/main.ts'] : ['--enable-source-maps', ensureBuilt()];
  const args = [...(opts.nodeArgs ?? []), ...entry];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exitInfo: string | undefined;
  let cleanExit = false;
  let stopping = false;
  child.once('exit', (code, signal) => {
    exitInfo = `jetpull exited (code ${code}, signal ${signal})`;
    cleanExit = stopping && code === 0;
    logStream.write(`[bench] ${exitInfo}${stopping ? '' : ' UNEXPECTEDLY'}\n`);
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    logStream.write(chunk);
    countLevels(chunk.toString('latin1'));
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    logStream.write(chunk);
    countLevels(chunk.toString('latin1'));
  });
  const unregisterJetpull = registerCleanup(
    'jetpull',
    () => stopChild(child),
    () => {
      child.kill('SIGKILL');
    },
  );

  const readyBy = nowMs() + 60_000;
  for (;;) {
    if (exitInfo !== undefined) throw new BenchSetupError(`${exitInfo} during start-up; log: ${logFile}`);
    if ((await httpGetStatus('127.0.0.1', port, '/server-stat/')) === 200) break;
    if (nowMs() > readyBy) throw new BenchSetupError(`jetpull did not answer on :${port} within 60 s; log: ${logFile}`);
    await sleep(100);
  }
  log(`jetpull pid ${child.pid} on 127.0.0.1:${port}, nats-server pid ${nats.process.pid} at ${nats.url}; log ${logFile}`);

  let stopped = false;
  let keptLog: string | undefined = logFile;
  return {
    external: false,
    host: '127.0.0.1',
    port,
    natsUrl: nats.url,
    key,
    targets: [
      { name: 'jetpull', pid: child.pid! },
      { name: 'nats', pid: nats.process.pid! },
    ],
    jetpullPid: child.pid,
    get logFile() {
      return keptLog;
    },
    assertAlive() {
      if (exitInfo !== undefined) throw new Error(`${exitInfo}; log: ${logFile}`);
    },
    logCounts: () => ({ ...counts }),
    sign: (m) => signWith(key, m),
    async stop() {
      if (stopped) return;
      stopped = true;
      stopping = true;
      const t0 = nowMs();
      // jetpull drains its connections over PUSH_GATEWAY__DRAIN_WINDOW_MS (10 s) on SIGTERM.
      await stopChild(child, 30_000);
      const stopMs = Math.round(nowMs() - t0);
      logStream.write(`[bench] stopped in ${stopMs} ms\n`);
      log(`jetpull stopped in ${stopMs} ms (${exitInfo ?? 'still running'})`);
      unregisterJetpull();
      await nats.stop();
      unregisterNats();
      removeStore();
      unregisterStore();
      await new Promise<void>((r) => logStream.end(() => r()));
      // Keep the log only when it says something (warnings, errors, an unclean exit).
      if (logDir !== undefined && counts.warn + counts.error + counts.fatal === 0 && cleanExit) {
        rmSync(logDir, { recursive: true, force: true });
        keptLog = undefined;
      }
    },
  };
}

function externalDeployment(opts: DeploymentOptions): Deployment {
  const url = new URL(opts.url!);
  if (!isLoopbackHost(url.hostname)) {
    throw new BenchSetupError(`--url ${opts.url}: the benchmark only sends traffic to loopback addresses (127.0.0.0/8, localhost)`);
  }
  if (opts.nats !== undefined && !isLoopbackHost(new URL(opts.nats.replace(/^nats:/, 'http:')).hostname)) {
    throw new BenchSetupError(`--nats ${opts.nats}: only loopback NATS servers are used`);
  }
  const key = opts.key ?? DEFAULT_KEY;
  const targets: SampleTarget[] = [];
  const names = ['jetpull', 'nats'];
  (opts.serverPids ?? '')
    .split(',')
    .filter((s) => s.trim() !== '')
    .forEach((p, i) => targets.push({ name: names[i] ?? `server${i}`, pid: Number(p) }));
  const host = url.hostname === 'localhost' ? '127.0.0.1' : url.hostname;
  return {
    external: true,
    host,
    port: Number(url.port || 80),
    natsUrl: opts.nats,
    key,
    targets,
    jetpullPid: targets[0]?.pid,
    logFile: undefined,
    assertAlive() {
      for (const t of targets) {
        try {
          process.kill(t.pid, 0);
        } catch {
          throw new Error(`server process ${t.name} (pid ${t.pid}) is gone`);
        }
      }
    },
    logCounts: () => ({ warn: 0, error: 0, fatal: 0 }),
    sign: (m) => signWith(key, m),
    async stop() {},
  };
}

/**
 * The compiled entry point, rebuilt (`npm run build`) when any file under src/ or
 * streams/ is newer than it, so a benchmark always measures the current sources
 * the way production runs them.
 */
function ensureBuilt(): string {
  const entry = join(REPO_ROOT, 'dist', 'src', 'main.js');
  const newest = (dir: string): number => {
    let max = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      max = Math.max(max, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return max;
  };
  const built = existsSync(entry) ? statSync(entry).mtimeMs : 0;
  if (built < Math.max(newest(join(REPO_ROOT, 'src')), newest(join(REPO_ROOT, 'streams')))) {
    process.stderr.write('[bench] building dist/ (npm run build)\n');
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return entry;
}
