import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TEST_KEY } from '../../helpers/channels.ts';
import { freePort } from '../../helpers/ports.ts';
import { registerGroup, unregisterGroup } from './process-reaper.ts';
import { sleep } from './time.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * One jetpull process (`node --import tsx src/main.ts`) in its own process group,
 * on ports that stay the same across restarts, so clients and the load find it at
 * the same address after `kill9()` + `start()`. Every exit is recorded, with
 * whether the suite caused it, and `/readyz` is polled to see when it stops
 * answering.
 */

export type Role = 'gateway' | 'publisher' | 'all';

export interface ProcessEvent {
  at: number;
  process: string;
  what: 'ready' | 'killed' | 'exited' | 'not-ready' | 'ready-again' | 'start-failed';
  /** True when the suite caused it (kill -9, stop). */
  expected: boolean;
  detail?: string;
}

export interface LogLine {
  at: number;
  process: string;
  level: number;
  msg: string;
  fields: Record<string, unknown>;
}

/** Log messages kept for reports: the ones that tell what a gateway or publisher went through. */
const KEPT_MESSAGES = new Set([
  'caught up',
  'catch-up failed, retrying',
  'gap filled',
  'gap fill failed',
  'nats disconnected',
  'nats reconnected',
  'nats connection stale',
  'nats slow consumer',
  'nats server error',
  'replay failed',
  'slow client disconnected',
  'shared replay scan done',
  'publish failed',
  'connection refused',
  'started',
  'stopped',
  'live subscription failed',
]);

export class JetpullProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectExit = false;
  private watching = false;
  private ready = false;
  /** Kept log lines of every incarnation, and warnings and errors whatever their message. */
  readonly logs: LogLine[] = [];
  /** Count of log lines by message, for the report. */
  readonly logCounts = new Map<string, number>();
  incarnation = 0;

  private constructor(
    readonly name: string,
    readonly role: Role,
    readonly port: number,
    readonly adminPort: number,
    private natsUrl: string,
    private readonly env: Record<string, string>,
    private readonly events: ProcessEvent[],
  ) {}

  static async create(name: string, role: Role, natsUrl: string, env: Record<string, string>, events: ProcessEvent[]): Promise<JetpullProcess> {
    return new JetpullProcess(name, role, await freePort(), await freePort(), natsUrl, env, events);
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsBase(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get nats(): string {
    return this.natsUrl;
  }

  /** Starts it and waits for `/readyz`; retried (its NATS node may be down right now) until `timeoutMs`. */
  async start(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.startOnce(Math.max(5_000, deadline - Date.now()))) {
        this.watchReadiness();
        return;
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not become ready within ${timeoutMs} ms: ${this.lastLines()}`);
      await sleep(500);
    }
  }

  private async startOnce(timeoutMs: number): Promise<boolean> {
    this.expectExit = false;
    this.incarnation++;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        NATS_URL: this.natsUrl,
        PUSH_ROLE: this.role,
        PUSH_PORT: String(this.port),
        PUSH_HOSTNAME: '127.0.0.1',
        PUSH_ADMIN__PORT: String(this.adminPort),
        PUSH_SECURITY__KEY: TEST_KEY,
        PUSH_PROCESS_UNIQUE_ID: this.name,
        PUSH_NATS__NAME: this.name,
        PUSH_LOG__LEVEL: 'info',
        ...this.env,
      },
    });
    this.child = child;
    registerGroup(child.pid!, this.name);
    let partial = '';
    // JETPULL_FAULTS_LOG_DIR keeps every line each process wrote, to read a finding against.
    const logDir = process.env.JETPULL_FAULTS_LOG_DIR;
    if (logDir) mkdirSync(logDir, { recursive: true });
    const logFile = logDir ? join(logDir, `${this.name}.log`) : undefined;
    const onData = (chunk: Buffer): void => {
      if (logFile !== undefined) appendFileSync(logFile, chunk);
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onLogLine(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        unregisterGroup(child.pid!);
        this.ready = false;
        this.events.push({ at: Date.now(), process: this.name, what: 'exited', expected: this.expectExit, detail: `code ${code} signal ${signal}` });
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) {
        this.events.push({ at: Date.now(), process: this.name, what: 'start-failed', expected: true, detail: this.lastLines() });
        return false;
      }
      if (await this.probeReady()) {
        this.ready = true;
        this.events.push({ at: Date.now(), process: this.name, what: 'ready', expected: true, detail: `incarnation ${this.incarnation}, NATS ${this.natsUrl}` });
        return true;
      }
      await sleep(100);
    }
    this.expectExit = true;
    process.kill(-child.pid!, 'SIGKILL');
    await this.exited;
    return false;
  }

  private onLogLine(line: string): void {
    if (line.trim() === '') return;
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      rec = { level: 50, msg: line, time: Date.now() };
    }
    const msg = String(rec.msg ?? '');
    const level = Number(rec.level ?? 30);
    this.logCounts.set(msg, (this.logCounts.get(msg) ?? 0) + 1);
    if (!KEPT_MESSAGES.has(msg) && level < 40) return;
    const { msg: _m, level: _l, time, pid: _p, hostname: _h, ...fields } = rec;
    this.logs.push({ at: typeof time === 'number' ? time : Date.now(), process: this.name, level, msg, fields });
    if (this.logs.length > 50_000) this.logs.splice(0, 10_000);
  }

  private lastLines(): string {
    return this.logs
      .slice(-3)
      .map((l) => `${l.msg} ${JSON.stringify(l.fields).slice(0, 300)}`)
      .join(' | ');
  }

  private async probeReady(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.adminPort}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Polls /readyz every 500 ms while the process runs and records when it stops answering 200 and when it is back. */
  private watchReadiness(): void {
    if (this.watching) return;
    this.watching = true;
    void (async () => {
      let failingSince: number | undefined;
      while (this.watching) {
        await sleep(500);
        if (!this.running) {
          failingSince = undefined;
          continue;
        }
        const ok = await this.probeReady();
        if (!this.running) continue;
        if (!ok && failingSince === undefined) {
          failingSince = Date.now();
          this.events.push({ at: failingSince, process: this.name, what: 'not-ready', expected: false });
        } else if (ok && failingSince !== undefined) {
          this.events.push({ at: Date.now(), process: this.name, what: 'ready-again', expected: false, detail: `after ${Date.now() - failingSince} ms` });
          failingSince = undefined;
        }
      }
    })();
  }

  /** kill -9 of its process group. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    this.expectExit = true;
    this.events.push({ at: Date.now(), process: this.name, what: 'killed', expected: true, detail: 'SIGKILL' });
    process.kill(-child.pid!, 'SIGKILL');
    await this.exited;
  }

  /** Points the next start at another NATS node. */
  useNats(url: string): void {
    this.natsUrl = url;
  }

  /** SIGTERM (graceful drain), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.watching = false;
    const child = this.child;
    if (child === undefined || !this.running) return;
    this.expectExit = true;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
