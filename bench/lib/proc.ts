import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { round } from './util.ts';

/** Clock ticks per second of /proc/<pid>/stat times. */
const CLK_TCK = ((): number => {
  try {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(v) && v > 0 ? v : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process in milliseconds, or undefined when it is gone. */
export function procCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Resident set size in KiB (VmRSS), or undefined when the process is gone. */
export function procRssKiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Soft limit of open files of a process (from /proc/<pid>/limits). */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  const text = readFileSync(`/proc/${pid}/limits`, 'latin1');
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(text);
  if (!m) return Infinity;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

export function openFdCount(pid: number | 'self' = 'self'): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Direct children of a process (all its threads' children). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').trim();
        if (text !== '') for (const c of text.split(' ')) out.push(Number(c));
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/**
 * A process and all its descendants (e.g. jetpull's cluster workers), leaving out
 * `exclude` and their subtrees (processes sampled on their own, such as a nats-server
 * that jetpull started as its child).
 */
export function processTree(pid: number, exclude?: ReadonlySet<number>): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 256; i++) {
    for (const c of childrenOf(out[i]!)) if (exclude === undefined || !exclude.has(c)) out.push(c);
  }
  return out;
}

/** Pids of kernel threads whose name starts with `prefix`. */
function kernelThreads(prefix: string): number[] {
  const out: number[] = [];
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (readFileSync(`/proc/${d}/comm`, 'latin1').startsWith(prefix)) out.push(Number(d));
      } catch {
        // gone
      }
    }
  } catch {
    // no /proc
  }
  return out;
}

/** Busy, interrupt and total ticks of all CPUs (first line of /proc/stat). */
function machineTicks(): { busy: number; irq: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, irq: irq + softirq, total: busy + idle + iowait };
  } catch {
    return undefined;
  }
}

export interface ServerWindow {
  pid: number;
  /** Processes counted: the server and its descendants (cluster workers). */
  processes: number;
  /** CPU over the window, % of one core. */
  cpuPct: number;
  /** Highest CPU over any ~1 s span of the window, % of one core. */
  peakCpuPct: number;
  peakRssMiB: number;
  endRssMiB: number;
}

export interface WindowStats {
  wallS: number;
  /** The load generator's CPU (all its threads) over the window, % of one core. */
  loadgenPct: number;
  /** Of which in the kernel (socket reads and writes on loopback). */
  loadgenSysPct: number;
  /** Share of the window the load generator's event loop was busy (0..1). */
  loadgenEventLoopUtil: number;
  loadgenPeakRssMiB: number;
  servers: Record<string, ServerWindow>;
  /** CPU used by the whole machine over the window, % of one core (cores × 100 at most). */
  machineBusyPct: number;
  /** Interrupt and softirq time (mostly the loopback network stack), part of the figures above. */
  irqPct: number;
  /** CPU of the kernel's ksoftirqd threads: network work the kernel deferred, mostly this benchmark's loopback traffic. */
  ksoftirqdPct: number;
  /** Machine CPU used by none of the load generator, the sampled servers and ksoftirqd: other work on the machine disturbs the figures. */
  otherPct: number;
  /** True when the load generator's CPU or event loop was above 90 % of one core (windows of 0.5 s or more). */
  loadgenSaturated: boolean;
}

/** Windows shorter than this are not flagged as saturated (too short to judge). */
export const MIN_JUDGED_WINDOW_MS = 500;

export interface SampleTarget {
  name: string;
  pid: number;
}

/**
 * Samples the load generator and the server processes during a measured window:
 * CPU from process.cpuUsage() and /proc/<pid>/stat, RSS from /proc/<pid>/status,
 * every `intervalMs`.
 */
export class ResourceSampler {
  private timer: NodeJS.Timeout | undefined;
  private startWall = 0;
  private startCpu: NodeJS.CpuUsage = { user: 0, system: 0 };
  private startElu: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  private loadgenPeakRss = 0;
  private startTicks: { busy: number; irq: number; total: number } | undefined;
  private ksoftirqd: Array<{ pid: number; start: number }> = [];
  private readonly series = new Map<
    string,
    { wall: number[]; cpu: number[]; peakRss: number; lastRss: number; startCpu: number; perPid: Map<number, number>; total: number; processes: number }
  >();

  constructor(
    private readonly targets: readonly SampleTarget[],
    private readonly intervalMs = 200,
  ) {}

  start(): this {
    this.startWall = performance.now();
    this.startCpu = process.cpuUsage();
    this.startElu = performance.eventLoopUtilization();
    this.startTicks = machineTicks();
    this.ksoftirqd = kernelThreads('ksoftirqd/').map((pid) => ({ pid, start: procCpuMs(pid) ?? 0 }));
    this.loadgenPeakRss = process.memoryUsage.rss();
    for (const t of this.targets) {
      const perPid = new Map<number, number>();
      let rss = 0;
      const tree = processTree(t.pid, this.others(t.pid));
      for (const pid of tree) {
        const c = procCpuMs(pid);
        if (c !== undefined) perPid.set(pid, c);
        rss += procRssKiB(pid) ?? 0;
      }
      this.series.set(t.name, { wall: [this.startWall], cpu: [0], peakRss: rss, lastRss: rss, startCpu: 0, perPid, total: 0, processes: tree.length });
    }
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  /** The other targets' pids: left out of this target's tree. */
  private others(pid: number): Set<number> {
    return new Set(this.targets.map((t) => t.pid).filter((p) => p !== pid));
  }

  private sample(): void {
    const wall = performance.now();
    this.loadgenPeakRss = Math.max(this.loadgenPeakRss, process.memoryUsage.rss());
    for (const t of this.targets) {
      const s = this.series.get(t.name)!;
      // CPU of the whole tree, as the sum of per-process increments (a process that
      // appears counts from its first sample; one that exits keeps what it used).
      const tree = processTree(t.pid, this.others(t.pid));
      let rss = 0;
      let seen = false;
      for (const pid of tree) {
        const c = procCpuMs(pid);
        if (c === undefined) continue;
        seen = true;
        const prev = s.perPid.get(pid);
        if (prev !== undefined) s.total += c - prev;
        s.perPid.set(pid, c);
        rss += procRssKiB(pid) ?? 0;
      }
      if (seen) {
        s.wall.push(wall);
        s.cpu.push(s.total);
        s.lastRss = rss;
        s.peakRss = Math.max(s.peakRss, rss);
        s.processes = Math.max(s.processes, tree.length);
      }
    }
  }

  stop(): WindowStats {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    const wallMs = performance.now() - this.startWall;
    const cpu = process.cpuUsage(this.startCpu);
    const elu = performance.eventLoopUtilization(this.startElu);
    const loadgenPct = wallMs > 0 ? ((cpu.user + cpu.system) / 1000 / wallMs) * 100 : 0;
    const servers: Record<string, ServerWindow> = {};
    for (const t of this.targets) {
      const s = this.series.get(t.name)!;
      const n = s.cpu.length;
      const total = n > 0 ? s.cpu[n - 1]! - s.startCpu : 0;
      let peak = 0;
      // Highest CPU over spans of at least ~1 s (or the whole window when shorter).
      let j = 0;
      for (let i = 1; i < n; i++) {
        while (j < i - 1 && s.wall[i]! - s.wall[j + 1]! >= 1000) j++;
        const dt = s.wall[i]! - s.wall[j]!;
        if (dt >= Math.min(1000, wallMs * 0.9) && dt > 0) peak = Math.max(peak, ((s.cpu[i]! - s.cpu[j]!) / dt) * 100);
      }
      servers[t.name] = {
        pid: t.pid,
        processes: s.processes,
        cpuPct: round(wallMs > 0 ? (total / wallMs) * 100 : 0, 1),
        peakCpuPct: round(Math.max(peak, wallMs > 0 ? (total / wallMs) * 100 : 0), 1),
        peakRssMiB: round(s.peakRss / 1024, 1),
        endRssMiB: round(s.lastRss / 1024, 1),
      };
    }
    const endTicks = machineTicks();
    let machineBusyPct = NaN;
    let irqPct = NaN;
    if (this.startTicks && endTicks && endTicks.total > this.startTicks.total) {
      const scale = (cpus().length * 100) / (endTicks.total - this.startTicks.total);
      machineBusyPct = (endTicks.busy - this.startTicks.busy) * scale;
      irqPct = (endTicks.irq - this.startTicks.irq) * scale;
    }
    // Per-process times already include the interrupt ticks taken while they ran (tick-based
    // accounting), so interrupts are not subtracted again; ksoftirqd threads (network work
    // deferred by the kernel, mostly our own loopback traffic) are.
    const ksoftirqdMs = this.ksoftirqd.reduce((sum, k) => sum + ((procCpuMs(k.pid) ?? k.start) - k.start), 0);
    const ksoftirqdPct = wallMs > 0 ? (ksoftirqdMs / wallMs) * 100 : 0;
    let accounted = loadgenPct + ksoftirqdPct;
    for (const w of Object.values(servers)) accounted += w.cpuPct;
    return {
      wallS: round(wallMs / 1000, 3),
      machineBusyPct: round(machineBusyPct, 1),
      irqPct: round(irqPct, 1),
      ksoftirqdPct: round(ksoftirqdPct, 1),
      otherPct: round(Math.max(0, machineBusyPct - accounted), 1),
      loadgenPct: round(loadgenPct, 1),
      loadgenSysPct: round(wallMs > 0 ? (cpu.system / 1000 / wallMs) * 100 : 0, 1),
      loadgenEventLoopUtil: round(elu.utilization, 3),
      loadgenPeakRssMiB: round(this.loadgenPeakRss / 1024 / 1024, 1),
      servers,
      // Windows under half a second are too short to judge.
      loadgenSaturated: wallMs >= MIN_JUDGED_WINDOW_MS && (loadgenPct >= 90 || elu.utilization >= 0.9),
    };
  }
}
