import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { freePort } from './ports.ts';

/**
 * A real NATS server with JetStream for one test file: the local `nats-server`
 * binary on a free port with a temporary store, or a container through
 * testcontainers with JETPULL_TEST_NATS=container (image JETPULL_TEST_NATS_IMAGE,
 * Docker engine from DOCKER_HOST). Same interface for both. JETPULL_TEST_NATS_BINARY
 * names another nats-server binary (the suite runs against more than one release).
 *
 * `kill()` stops the server abruptly and `start()` brings it back on the same port
 * with the same store, for restart tests.
 */
export interface TestNats {
  readonly url: string;
  readonly port: number;
  readonly backend: 'binary' | 'container';
  /** Stops abruptly (SIGKILL / container kill): unacknowledged writes may be lost. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same store. */
  start(): Promise<void>;
  /** Freezes the server (SIGSTOP / docker pause): connections stay open, nothing is answered. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TestNatsOptions {
  /** Appended to the server config (binary backend only), e.g. a cluster block. */
  extraConfig?: string;
  port?: number;
  storeDir?: string;
  /** Each line the server logs (binary backend only). */
  onLog?: (line: string) => void;
}

export async function startTestNats(opts: TestNatsOptions = {}): Promise<TestNats> {
  if (process.env.JETPULL_TEST_NATS === 'container') {
    if (opts.extraConfig !== undefined || opts.onLog !== undefined) throw new Error('a cluster, extra server config or the server log needs the binary backend');
    return startContainer();
  }
  return startBinary(opts);
}

async function startBinary(opts: TestNatsOptions): Promise<TestNats> {
  const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'jetpull-test-store-'));
  const ownsStore = opts.storeDir === undefined;
  const binary = process.env.JETPULL_TEST_NATS_BINARY;
  let server: LocalNats = await startLocalNats({ binary, storeDir, port: opts.port ?? -1, extraConfig: opts.extraConfig, onLog: opts.onLog });
  const port = server.port;
  let running = true;
  const handle: TestNats = {
    url: server.url,
    port,
    backend: 'binary',
    async kill() {
      if (!running) return;
      running = false;
      await server.stop('SIGKILL');
    },
    async start() {
      if (running) return;
      server = await startWithRetry(() => startLocalNats({ binary, storeDir, port, extraConfig: opts.extraConfig, onLog: opts.onLog }));
      running = true;
    },
    async pause() {
      server.process.kill('SIGSTOP');
      await processState(server.process.pid, (state) => state === 'T', 'stopped');
    },
    async resume() {
      server.process.kill('SIGCONT');
      await processState(server.process.pid, (state) => state !== 'T', 'running');
    },
    async stop() {
      if (running) {
        running = false;
        await server.stop();
      }
      if (ownsStore) rmSync(storeDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => handle.stop(),
  };
  return handle;
}

/** The port can stay in TIME_WAIT for a moment after a kill. */
async function startWithRetry(start: () => Promise<LocalNats>): Promise<LocalNats> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function startContainer(): Promise<TestNats> {
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers');
  const port = await freePort();
  // The image's entrypoint is nats-server (as the official image's); no auth, like the binary backend.
  const started = await new GenericContainer(process.env.JETPULL_TEST_NATS_IMAGE ?? 'nats:2.10-alpine')
    .withCommand(['-js', '-sd', '/data'])
    .withExposedPorts({ container: 4222, host: port })
    .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
    .start();
  // The Docker API (dockerode) kills, pauses and restarts the same container, keeping its store and port.
  const docker = (await getContainerRuntimeClient()).container.getById(started.getId());
  let running = true;
  const handle: TestNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    backend: 'container',
    async kill() {
      if (!running) return;
      running = false;
      await docker.kill();
    },
    async start() {
      if (running) return;
      await docker.start();
      running = true;
    },
    async pause() {
      await docker.pause();
    },
    async resume() {
      await docker.unpause();
    },
    async stop() {
      running = false;
      await started.stop();
    },
    [Symbol.asyncDispose]: () => handle.stop(),
  };
  return handle;
}

/** A JetStream cluster of `size` local nats-server processes (binary backend), for failover tests. */
export interface TestCluster {
  readonly nodes: TestNats[];
  /** Every node's client URL, comma separated, as NATS_URL takes it. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface TestClusterOptions {
  /** Appended to every node's config (an authorization block). */
  extraConfig?: string;
  /** Each line a node logs, with the node's index. */
  onLog?: (node: number, line: string) => void;
  /** The user the readiness check logs in as, when the extra config asks for one. */
  user?: { user: string; pass: string };
}

export async function startTestCluster(size = 3, name = 'jetpull-test', opts: TestClusterOptions = {}): Promise<TestCluster> {
  const nodes = await startClusterNodes(size, name, opts);
  const cluster: TestCluster = {
    nodes,
    url: nodes.map((n) => n.url).join(','),
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
  await waitForJetStream(cluster.url, opts.user);
  return cluster;
}

/** Attempts at starting a cluster: its route ports are picked before the servers bind them, and another process may take one meanwhile. */
const CLUSTER_START_ATTEMPTS = 3;

async function startClusterNodes(size: number, name: string, opts: TestClusterOptions): Promise<TestNats[]> {
  for (let attempt = 1; ; attempt++) {
    const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const clientPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
    const started = await Promise.allSettled(startNodes(routePorts, clientPorts, name, opts));
    const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (nodes.length === size) return nodes;
    await Promise.all(nodes.map((n) => n.stop()));
    const failure = started.find((r) => r.status === 'rejected')!.reason as Error;
    if (attempt === CLUSTER_START_ATTEMPTS) throw failure;
  }
}

function startNodes(routePorts: number[], clientPorts: number[], name: string, opts: TestClusterOptions): Array<Promise<TestNats>> {
  const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
  return routePorts.map((routePort, i) =>
    startBinary({
      port: clientPorts[i]!,
      extraConfig: `server_name: n${i + 1}\ncluster {\n  name: ${name}\n  listen: 127.0.0.1:${routePort}\n  routes: [${routes}]\n}\n${opts.extraConfig ?? ''}`,
      ...(opts.onLog === undefined ? {} : { onLog: (line: string) => opts.onLog!(i, line) }),
    }),
  );
}

/** A new cluster elects its JetStream meta leader a few seconds after start; until then API calls time out. */
async function waitForJetStream(url: string, user?: { user: string; pass: string }, timeoutMs = 30_000): Promise<void> {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: url.split(','), maxReconnectAttempts: -1, ...user });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 1_000 });
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error('JetStream cluster did not become ready', { cause: err });
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * Waits until the kernel reports the process in the state wanted (Linux /proc, the
 * third field of stat: T is stopped): a signal is delivered after kill() returns, and
 * a test that reads right after a pause must find the server already frozen.
 */
async function processState(pid: number | undefined, wanted: (state: string) => boolean, what: string): Promise<void> {
  if (pid === undefined) throw new Error('the server has no process id');
  for (const until = Date.now() + 5_000; ; await sleep(1)) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (wanted(state)) return;
    if (Date.now() > until) throw new Error(`nats-server ${pid} is not ${what} 5 s after the signal (state ${state})`);
  }
}
