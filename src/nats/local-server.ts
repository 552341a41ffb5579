import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Starts a nats-server binary as a child process with JetStream: used by `npm start`
 * when NATS_URL is unset, and by the tests. The server picks a free port when asked
 * for port -1 and reports it through a ports file, so nothing races for ports.
 */

export interface LocalNatsOptions {
  binary?: string;
  /** JetStream store directory; created if missing. */
  storeDir: string;
  /** Client port; -1 picks a free one. */
  port?: number;
  /** Largest message the server accepts (bytes); NATS's default of 1 MiB is too small for a 1 MiB body plus headers. */
  maxPayloadBytes?: number;
  /** Extra configuration text appended verbatim (cluster blocks in tests). */
  extraConfig?: string;
  /** Called with each line the server prints (its log). */
  onLog?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface LocalNats {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** SIGTERM (or the given signal), then waits for exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export class NatsBinaryMissingError extends Error {
  constructor(binary: string, options?: ErrorOptions) {
    super(
      `cannot start "${binary}": it is not installed or not on PATH. ` +
        'Install it (Debian/Ubuntu: apt-get install -y nats-server) or set NATS_URL to a running NATS server with JetStream.',
      options,
    );
    this.name = 'NatsBinaryMissingError';
  }
}

/** Debian installs nats-server into /usr/sbin, which is not on every user's PATH. */
const EXTRA_LOCATIONS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/sbin'];

/** The binary as given when it contains a slash or is on PATH, else the first known location that has it. */
export function resolveNatsBinary(name: string): string {
  if (name.includes('/')) return name;
  const onPath = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const dir of [...onPath, ...EXTRA_LOCATIONS]) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return name;
}

export async function startLocalNats(opts: LocalNatsOptions): Promise<LocalNats> {
  const binary = resolveNatsBinary(opts.binary ?? 'nats-server');
  const storeDir = resolve(opts.storeDir);
  mkdirSync(storeDir, { recursive: true });
  const runDir = mkdtempSync(join(tmpdir(), 'jetpull-nats-'));
  const confFile = join(runDir, 'nats.conf');
  writeFileSync(
    confFile,
    [
      `listen: "127.0.0.1:${opts.port ?? -1}"`,
      `max_payload: ${opts.maxPayloadBytes ?? 8 * 1024 * 1024}`,
      `ports_file_dir: ${JSON.stringify(runDir)}`,
      `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
      opts.extraConfig ?? '',
    ].join('\n'),
  );
  const child = spawn(binary, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const lines = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') opts.onLog?.(line);
  };
  child.stdout?.on('data', lines);
  child.stderr?.on('data', lines);
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new NatsBinaryMissingError(binary, { cause: err }) : err),
    ),
  );
  const cleanup = (): void => rmSync(runDir, { recursive: true, force: true });
  try {
    const port = await Promise.race([waitForPortsFile(runDir, child, opts.startTimeoutMs ?? 10_000), spawnError]);
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      process: child,
      exited: exited.finally(cleanup),
      async stop(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        await exited;
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    cleanup();
    throw err;
  }
}

async function waitForPortsFile(dir: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode} before it was ready`);
    const file = readdirSync(dir).find((f) => f.endsWith('.ports'));
    if (file !== undefined) {
      try {
        const ports = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { nats?: string[] };
        const url = ports.nats?.[0];
        if (url) return Number(url.slice(url.lastIndexOf(':') + 1));
      } catch {
        // written but not complete yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not report its port within ${timeoutMs} ms`);
}
