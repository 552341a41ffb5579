import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { registerCleanup } from './cleanup.ts';
import { freePort } from './deploy.ts';
import { procCpuMs, procRssKiB } from './proc.ts';
import { sleep } from './util.ts';

/**
 * One nats-server or a 3-node loopback cluster for the scaling scenarios, each node
 * with its monitoring port (varz, subsz, routez, jsz) and its pid, so that CPU and
 * memory are read per node from /proc and subscriptions are counted per node.
 * Temporary stores, removed at the end however the run ends.
 */

export interface NatsNode {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly monitorPort: number;
  cpuMs(): number;
  rssKiB(): number;
  /**
   * Live heap after the latest garbage collection (MiB, from the Go runtime's gctrace;
   * only when started with `gcTrace`): the server's own memory, without the slack of
   * RSS. At GOGC=2 a collection follows every 2 % of growth; more are provoked with
   * monitoring requests, so the figure is at most a few percent old.
   */
  liveHeapMiB(): Promise<number>;
  /** A monitoring endpoint as JSON (`varz`, `subsz`, `routez?subs=1`, `jsz?streams=1`). */
  monitor<T = Record<string, unknown>>(path: string): Promise<T>;
}

export interface NatsNodes {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL, comma separated. */
  readonly url: string;
  byName(name: string): NatsNode;
  stop(): Promise<void>;
}

/** `gc 12 @3.4s 2%: … ms cpu, 4->5->2 MB, 5 MB goal, …`: heap at start, at end, live after. */
const GC_LINE = /(\d+)->(\d+)->(\d+) MB/;

export interface NatsNodesOptions {
  /** Go runtime GC trace (GODEBUG=gctrace=1) with GOGC=2, for liveHeapMiB; costs CPU, so not for CPU figures. */
  gcTrace?: boolean;
}

export async function startNatsNodes(size: 1 | 3, binary: string | undefined, clusterName = 'bench-scaling', opts: NatsNodesOptions = {}): Promise<NatsNodes> {
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const monitorPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  const stores = routePorts.map(() => mkdtempSync(join(tmpdir(), 'jetpull-bench-scaling-')));
  const removeStores = (): void => stores.forEach((d) => rmSync(d, { recursive: true, force: true }));
  const started: LocalNats[] = [];
  const unregister = registerCleanup(
    'nats nodes',
    async () => {
      await Promise.all(started.map((s) => s.stop()));
      removeStores();
    },
    () => {
      for (const s of started) s.process.kill('SIGKILL');
      removeStores();
    },
  );
  const gc = routePorts.map(() => ({ count: 0, liveMiB: NaN }));
  // The children inherit the environment when they are spawned, synchronously below.
  const savedEnv = { GODEBUG: process.env.GODEBUG, GOGC: process.env.GOGC };
  if (opts.gcTrace === true) Object.assign(process.env, { GODEBUG: 'gctrace=1', GOGC: '2' });
  const starting = Promise.all(
    routePorts.map(async (routePort, i) => {
      const cluster = size === 1 ? '' : `cluster {\n  name: ${clusterName}\n  listen: 127.0.0.1:${routePort}\n  routes: [${routes}]\n}\n`;
      const s = await startLocalNats({
        ...(binary === undefined ? {} : { binary }),
        storeDir: stores[i]!,
        port: -1,
        extraConfig: `server_name: n${i + 1}\nhttp: "127.0.0.1:${monitorPorts[i]}"\n${cluster}`,
        onLog: (line) => {
          const m = GC_LINE.exec(line);
          if (m !== null && line.startsWith('gc ')) {
            gc[i]!.count++;
            gc[i]!.liveMiB = Number(m[3]);
          }
        },
      });
      started.push(s);
      return s;
    }),
  );
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const servers = await starting;
  const nodes: NatsNode[] = servers.map((s, i) => ({
    name: `n${i + 1}`,
    url: s.url,
    pid: s.process.pid!,
    monitorPort: monitorPorts[i]!,
    cpuMs: () => procCpuMs(s.process.pid!) ?? NaN,
    rssKiB: () => procRssKiB(s.process.pid!) ?? NaN,
    async monitor<T>(path: string): Promise<T> {
      const res = await fetch(`http://127.0.0.1:${monitorPorts[i]}/${path}`);
      if (!res.ok) throw new Error(`monitoring ${path} on n${i + 1}: HTTP ${res.status}`);
      return (await res.json()) as T;
    },
    async liveHeapMiB(): Promise<number> {
      if (opts.gcTrace !== true) return NaN;
      const before = gc[i]!.count;
      const endpoints = ['subsz?subs=1&limit=100000', 'connz?subs=1', 'routez?subs=1', 'jsz?streams=1&consumers=1', 'varz'];
      for (let n = 0; n < 200 && gc[i]!.count < before + 2; n++) {
        const res = await fetch(`http://127.0.0.1:${monitorPorts[i]}/${endpoints[n % endpoints.length]}`);
        await res.arrayBuffer();
      }
      return gc[i]!.liveMiB;
    },
  }));
  const url = nodes.map((n) => n.url).join(',');
  await waitForJetStream(url);
  let stopped = false;
  return {
    nodes,
    url,
    byName(name) {
      const n = nodes.find((x) => x.name === name);
      if (n === undefined) throw new Error(`no node named ${name}`);
      return n;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(servers.map((s) => s.stop()));
      removeStores();
      unregister();
    },
  };
}

/** A new cluster elects its JetStream meta leader a few seconds after start; until then API calls time out. */
async function waitForJetStream(url: string, timeoutMs = 60_000): Promise<void> {
  const nc = await connect({ servers: url.split(','), maxReconnectAttempts: -1 });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1_000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error('JetStream did not become ready', { cause: err });
        await sleep(250);
      }
    }
  } finally {
    await nc.close();
  }
}

/** CPU milliseconds of every node, by name, now. */
export function cpuByNode(n: NatsNodes): Record<string, number> {
  return Object.fromEntries(n.nodes.map((x) => [x.name, x.cpuMs()]));
}

/** What each node used since `before`, by name. */
export function cpuSince(n: NatsNodes, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(n.nodes.map((x) => [x.name, x.cpuMs() - (before[x.name] ?? 0)]));
}
