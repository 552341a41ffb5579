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

export async function startNatsNodes(size: 1 | 3, binary: string | undefined, clusterName = 'bench-scaling'): Promise<NatsNodes> {
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
  const servers = await Promise.all(
    routePorts.map(async (routePort, i) => {
      const cluster = size === 1 ? '' : `cluster {\n  name: ${clusterName}\n  listen: 127.0.0.1:${routePort}\n  routes: [${routes}]\n}\n`;
      const s = await startLocalNats({
        ...(binary === undefined ? {} : { binary }),
        storeDir: stores[i]!,
        port: -1,
        extraConfig: `server_name: n${i + 1}\nhttp: "127.0.0.1:${monitorPorts[i]}"\n${cluster}`,
      });
      started.push(s);
      return s;
    }),
  );
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
