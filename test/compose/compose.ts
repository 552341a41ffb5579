import { run, runOk, type Ran } from './exec.ts';
import type { ComposeSettings } from './settings.ts';

export interface ContainerState {
  status: string;
  exitCode: number;
  restartCount: number;
  health: string | undefined;
}

/** `docker compose` on the project's own docker-compose.yml (plus the machine's override). */
export class Compose {
  constructor(
    readonly cfg: ComposeSettings,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * Any compose command. `env` replaces the environment (for the missing-key check);
   * `bin` runs another compose binary standalone instead of the `docker compose` plugin.
   */
  run(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; bin?: string } = {}): Promise<Ran> {
    const argv = ['-p', this.cfg.project, ...this.cfg.files.flatMap((f) => ['-f', f]), ...args];
    const [cmd, full] = opts.bin ? [opts.bin, argv] : ['docker', ['compose', ...argv]];
    return run(cmd, full, { cwd: this.cfg.root, env: opts.env ?? this.env, timeoutMs: opts.timeoutMs ?? 300_000 });
  }

  async ok(args: string[], timeoutMs?: number): Promise<Ran> {
    const r = await this.run(args, { timeoutMs });
    if (r.code !== 0) throw new Error(`docker compose ${args.join(' ')} exited ${r.code}:\n${(r.stderr || r.stdout).trimEnd().split('\n').slice(-30).join('\n')}`);
    return r;
  }

  /** Starts every service and waits until all are healthy. */
  up(): Promise<Ran> {
    return this.run(['up', '--detach', '--wait', '--wait-timeout', '240'], { timeoutMs: 420_000 });
  }

  /** Removes containers, networks and volumes: the next `up` starts from nothing. */
  down(): Promise<Ran> {
    return this.run(['down', '--volumes', '--remove-orphans', '--timeout', '40'], { timeoutMs: 180_000 });
  }

  /** The resolved model (`config --format json`). */
  async config(): Promise<{ services: Record<string, ComposeService> }> {
    return JSON.parse((await this.ok(['config', '--format', 'json'])).stdout) as { services: Record<string, ComposeService> };
  }

  async containerId(service: string): Promise<string> {
    const id = (await this.ok(['ps', '--all', '--quiet', service])).stdout.trim();
    if (!id) throw new Error(`no container for ${service}`);
    return id;
  }

  async state(service: string): Promise<ContainerState> {
    const id = await this.containerId(service);
    const raw = JSON.parse((await runOk('docker', ['inspect', id], { env: this.env })).stdout) as Array<{
      RestartCount: number;
      State: { Status: string; ExitCode: number; Health?: { Status: string } };
    }>;
    const c = raw[0]!;
    return { status: c.State.Status, exitCode: c.State.ExitCode, restartCount: c.RestartCount, health: c.State.Health?.Status };
  }

  /** Polls until the service's container reports healthy. */
  async waitHealthy(service: string, timeoutMs = 120_000): Promise<number> {
    const started = Date.now();
    for (;;) {
      const s = await this.state(service).catch(() => undefined);
      if (s?.health === 'healthy') return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`${service} not healthy after ${timeoutMs} ms (${s?.status}/${s?.health})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Runs argv in a running service container. */
  exec(service: string, argv: string[], timeoutMs = 30_000): Promise<Ran> {
    return this.run(['exec', '-T', service, ...argv], { timeoutMs });
  }

  logs(service: string): Promise<Ran> {
    return this.run(['logs', '--no-color', '--no-log-prefix', service], { timeoutMs: 30_000 });
  }
}

export interface ComposeService {
  image?: string;
  build?: unknown;
  pull_policy?: string;
  ulimits?: Record<string, { soft?: number; hard?: number } | number>;
  environment?: Record<string, string | null>;
}
