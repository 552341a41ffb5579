import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolveNatsBinary } from '../../src/nats/local-server.ts';
import { openFdCount, openFilesLimit } from './proc.ts';
import { round } from './util.ts';

export interface MachineInfo {
  cores: number;
  memGiB: number;
  node: string;
  natsServer: string;
  cpuModel: string;
  kernel: string;
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine skews results). */
  loadAvgAtStart: number[];
}

export function machineInfo(natsBinary = 'nats-server'): MachineInfo {
  let natsServer = 'unknown';
  try {
    const out = execFileSync(resolveNatsBinary(natsBinary), ['--version'], { encoding: 'utf8' }).trim();
    natsServer = /v?(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? out;
  } catch {
    natsServer = 'not installed';
  }
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    cores: cpus().length,
    memGiB: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    natsServer,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    kernel,
    loadAvgAtStart: loadavg().map((v) => round(v, 2)),
  };
}

export class BenchSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchSetupError';
  }
}

/** File descriptors the load generator needs besides its sockets (stdio, epoll, NATS, HTTP pools, slack). */
const FD_RESERVE = 128;

/**
 * Stops with a clear message when `clients` connections (plus `other` sockets the
 * scenario opens besides them) do not fit under the open-files soft limit (read from
 * /proc/self/limits); nothing is raised.
 */
export function requireFds(clients: number, other: number, what: string): void {
  const limit = openFilesLimit('self');
  const open = openFdCount('self');
  const fit = limit - open - FD_RESERVE - other;
  if (clients > fit) {
    throw new BenchSetupError(
      `${what} needs ${clients} client sockets (+${other} others) but the open-files limit of the load generator is ${limit} ` +
        `(ulimit -n; ${open} already open, ${FD_RESERVE} kept in reserve): at most ${Math.max(0, fit)} clients fit. ` +
        `The benchmark does not raise limits; run with --clients ${Math.max(0, fit)} or fewer, or raise "ulimit -n" ` +
        `(hard limit: see /proc/self/limits) before running.`,
    );
  }
}

/** The same check for a server process, which holds one socket per client too. */
export function requireServerFds(pid: number, name: string, clients: number, other: number): void {
  let limit: number;
  try {
    limit = openFilesLimit(pid);
  } catch {
    return;
  }
  const open = openFdCount(pid);
  const fit = limit - open - 32 - other;
  if (clients > fit) {
    throw new BenchSetupError(
      `${name} (pid ${pid}) would need ${clients} more client sockets (+${other} others) but its open-files limit is ${limit} ` +
        `with ${open} open: at most ${Math.max(0, fit)} clients fit. Run with --clients ${Math.max(0, fit)} or fewer.`,
    );
  }
}

/** Size of the ephemeral port range (connections per source address to one destination). */
export function ephemeralPorts(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi > lo) return hi - lo + 1;
  } catch {
    // fall through
  }
  return 28_000;
}

/** At most this many connections from one source address. */
export const MAX_PER_SOURCE = 20_000;

/**
 * Connections a load generator opens from one address at most: under jetpull's
 * defaults for one client address (gateway.maxConnectionsPerIp and
 * newConnectionsPerIpBurst, both 1000), as real users come from many addresses.
 */
export const MAX_PER_CLIENT_ADDRESS = 900;

/**
 * Loopback source addresses 127.0.0.2, 127.0.0.3, … so that more connections fit
 * than one address's ephemeral ports; at least `min` of them, enough for `connections`.
 * `skip` leaves out the first addresses: a second wave of connections from fresh
 * addresses does not make the kernel search past the first wave's TIME_WAIT ports.
 */
export function sourceAddresses(connections: number, min: number, skip = 0): string[] {
  const perAddress = Math.min(MAX_PER_SOURCE, MAX_PER_CLIENT_ADDRESS, ephemeralPorts() - 1_000);
  const n = Math.max(1, min, Math.ceil(connections / perAddress));
  if (skip + n > 250) throw new BenchSetupError(`${connections} connections need ${skip + n} source addresses; at most 250 are used`);
  return Array.from({ length: n }, (_, i) => `127.0.0.${skip + i + 2}`);
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]';
}
