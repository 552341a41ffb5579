import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../helpers/ports.ts';
import { registerGroup, unregisterGroup } from './process-reaper.ts';
import { sleep } from './time.ts';

/**
 * A JetStream cluster of separate nats-server processes on loopback. Each node
 * keeps its client port, route port and store directory for the whole run, so
 * `kill()` (SIGKILL) and `start()` bring it back as the same member with the same
 * data, and `pause()`/`resume()` (SIGSTOP/SIGCONT) freeze it with its sockets open.
 */

export const DEFAULT_NATS_BINARY = '/usr/sbin/nats-server';

export function natsBinary(): string {
  return process.env.JETPULL_TEST_NATS_BINARY || DEFAULT_NATS_BINARY;
}

export interface NodeEvent {
  at: number;
  node: string;
  what: 'started' | 'killed' | 'paused' | 'resumed' | 'exited';
  detail?: string;
}

export class NatsNode {
  private child: ChildProcess | undefined;
  private exitedPromise: Promise<void> = Promise.resolve();
  paused = false;
  /** The last lines the server printed, for reports. */
  readonly logTail: string[] = [];

  constructor(
    readonly name: string,
    readonly port: number,
    readonly routePort: number,
    readonly monitorPort: number,
    readonly storeDir: string,
    private readonly confFile: string,
    private readonly binary: string,
    private readonly events: NodeEvent[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the server (same ports, same store) and resolves once it accepts clients. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) return;
    // After a SIGKILL the route port can linger for a moment: retry the start.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.startOnce(timeoutMs);
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        await sleep(300);
      }
    }
  }

  private startOnce(timeoutMs: number): Promise<void> {
    const child = spawn(this.binary, ['-c', this.confFile], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    this.paused = false;
    registerGroup(child.pid!, `nats ${this.name}`);
    this.exitedPromise = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        unregisterGroup(child.pid!);
        this.events.push({ at: Date.now(), node: this.name, what: 'exited', detail: `code ${code} signal ${signal}` });
        resolve();
      }),
    );
    return new Promise((resolve, reject) => {
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) {
          child.kill('SIGKILL');
          reject(new Error(`nats-server ${this.name} not ready within ${timeoutMs} ms: ${this.logTail.slice(-5).join(' | ')}`));
        }
      }, timeoutMs);
      const onLine = (chunk: Buffer): void => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() === '') continue;
          this.logTail.push(line);
          if (this.logTail.length > 200) this.logTail.shift();
          if (!ready && line.includes('Server is ready')) {
            ready = true;
            clearTimeout(timer);
            this.events.push({ at: Date.now(), node: this.name, what: 'started' });
            resolve();
          }
        }
      };
      child.stdout?.on('data', onLine);
      child.stderr?.on('data', onLine);
      child.once('exit', (code) => {
        if (!ready) {
          clearTimeout(timer);
          reject(new Error(`nats-server ${this.name} exited with ${code} before it was ready: ${this.logTail.slice(-5).join(' | ')}`));
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** kill -9: no shutdown, unsynced writes may be lost. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    this.events.push({ at: Date.now(), node: this.name, what: 'killed' });
    process.kill(-child.pid!, 'SIGKILL');
    this.paused = false;
    await this.exitedPromise;
  }

  pause(): void {
    if (!this.running || this.paused) return;
    process.kill(-this.child!.pid!, 'SIGSTOP');
    this.paused = true;
    this.events.push({ at: Date.now(), node: this.name, what: 'paused' });
  }

  resume(): void {
    if (!this.running || !this.paused) return;
    process.kill(-this.child!.pid!, 'SIGCONT');
    this.paused = false;
    this.events.push({ at: Date.now(), node: this.name, what: 'resumed' });
  }

  /** Names of the client connections this node holds now (monitoring /connz); empty when it does not answer. */
  async connectionNames(): Promise<string[]> {
    if (!this.running || this.paused) return [];
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}/connz?limit=1024`, { signal: AbortSignal.timeout(1_000) });
      const body = (await res.json()) as { connections?: Array<{ name?: string }> };
      return (body.connections ?? []).map((c) => c.name ?? '');
    } catch {
      return [];
    }
  }

  /** Graceful stop at the end of a run; a paused node is woken first. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    try {
      process.kill(-child.pid!, 'SIGCONT');
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
    }, 5_000);
    await this.exitedPromise;
    clearTimeout(timer);
  }
}

export interface NatsCluster {
  readonly nodes: NatsNode[];
  readonly events: NodeEvent[];
  readonly binary: string;
  /** Every node's client URL, for the suite's own admin connection. */
  readonly urls: string[];
  node(name: string): NatsNode;
  /** The node a client connection of that name is on now, if any node answers. */
  nodeOf(connectionName: string): Promise<NatsNode | undefined>;
  stop(): Promise<void>;
}

export async function startNatsCluster(baseDir: string, size = 3, binary = natsBinary()): Promise<NatsCluster> {
  const clientPorts = await distinctPorts(size * 3);
  const monitorPorts = clientPorts.splice(size * 2);
  const routePorts = clientPorts.splice(size);
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  const events: NodeEvent[] = [];
  const nodes = clientPorts.map((port, i) => {
    const name = `n${i + 1}`;
    const dir = join(baseDir, name);
    const storeDir = join(dir, 'store');
    mkdirSync(storeDir, { recursive: true });
    const confFile = join(dir, 'nats.conf');
    writeFileSync(
      confFile,
      [
        `server_name: ${name}`,
        `listen: "127.0.0.1:${port}"`,
        `http: "127.0.0.1:${monitorPorts[i]}"`,
        // Room for a 1 MiB body plus jetpull's headers (filler traffic uses large bodies).
        'max_payload: 8388608',
        `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
        'cluster {',
        '  name: jetpull-faults',
        `  listen: "127.0.0.1:${routePorts[i]}"`,
        `  routes: [${routes}]`,
        '}',
        '',
      ].join('\n'),
    );
    return new NatsNode(name, port, routePorts[i]!, monitorPorts[i]!, storeDir, confFile, binary, events);
  });
  await Promise.all(nodes.map((n) => n.start()));
  return {
    nodes,
    events,
    binary,
    urls: nodes.map((n) => n.url),
    node(name: string) {
      const n = nodes.find((x) => x.name === name);
      if (n === undefined) throw new Error(`no node ${name}`);
      return n;
    },
    async nodeOf(connectionName: string) {
      for (const n of nodes) if ((await n.connectionNames()).includes(connectionName)) return n;
      return undefined;
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

async function distinctPorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}
