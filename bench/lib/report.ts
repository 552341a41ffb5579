import type { MachineInfo } from './env.ts';
import type { WindowStats } from './proc.ts';

export type TableRow = [label: string, value: string];

/** What a scenario hands back to the runner. */
export interface ScenarioOutcome {
  params: Record<string, unknown>;
  results: Record<string, unknown>;
  /** The measured window the top-level cpu/rss figures describe. */
  window: WindowStats;
  /** Every measured window (the main one included) with a label, for saturation warnings. */
  windows: Array<{ label: string; window: WindowStats }>;
  table: TableRow[];
  problems: string[];
  serverLog?: string | undefined;
}

export interface RunReport {
  scenario: string;
  date: string;
  machine: MachineInfo;
  params: Record<string, unknown>;
  results: Record<string, unknown>;
  cpu: Record<string, number>;
  rss: Record<string, number>;
  loadgenSaturated: boolean;
  /** Highest CPU share (of one core) other processes used during a measured window. */
  otherLoadMaxPct: number;
  problems: string[];
  serverLog?: string;
}

/** cpu/rss objects of a window: loadgenPct, <server>Pct, <server>MiB (peak RSS). */
export function cpuRss(w: WindowStats): { cpu: Record<string, number>; rss: Record<string, number> } {
  const cpu: Record<string, number> = { loadgenPct: w.loadgenPct, loadgenSysPct: w.loadgenSysPct, loadgenEventLoopUtil: w.loadgenEventLoopUtil };
  const rss: Record<string, number> = { loadgenMiB: w.loadgenPeakRssMiB };
  cpu.machineBusyPct = w.machineBusyPct;
  cpu.irqPct = w.irqPct;
  cpu.ksoftirqdPct = w.ksoftirqdPct;
  cpu.otherProcessesPct = w.otherPct;
  for (const [name, s] of Object.entries(w.servers)) {
    cpu[`${name}Pct`] = s.cpuPct;
    cpu[`${name}PeakPct`] = s.peakCpuPct;
    rss[`${name}MiB`] = s.peakRssMiB;
  }
  return { cpu, rss };
}

/** The window as it goes into a part of `results`. */
export function windowJson(w: WindowStats): Record<string, unknown> {
  return { windowS: w.wallS, ...cpuRss(w), loadgenSaturated: w.loadgenSaturated };
}

/** One table row with the CPU and RSS of a window. */
export function cpuRow(label: string, w: WindowStats): TableRow {
  const parts = [`loadgen ${w.loadgenPct}% (sys ${w.loadgenSysPct}%, event loop ${Math.round(w.loadgenEventLoopUtil * 100)}% busy)`];
  for (const [name, s] of Object.entries(w.servers)) parts.push(`${name} ${s.cpuPct}% (peak ${s.peakCpuPct}%) ${s.peakRssMiB} MiB`);
  parts.push(`ksoftirqd ${w.ksoftirqdPct}%, other processes ${w.otherPct}%`);
  return [`${label} cpu/rss`, parts.join(', ')];
}

export function saturationWarning(label: string, w: WindowStats): string | undefined {
  if (!w.loadgenSaturated) return undefined;
  return (
    `WARNING: the load generator was saturated during ${label} (CPU ${w.loadgenPct}% of one core, event loop ` +
    `${Math.round(w.loadgenEventLoopUtil * 100)}% busy): the figures are a lower bound of what the server can do.`
  );
}

/** Other work on the machine above this share of one core during a window is reported. */
export const OTHER_LOAD_WARN_PCT = 20;

export function otherLoadWarning(label: string, w: WindowStats): string | undefined {
  if (!(w.otherPct > OTHER_LOAD_WARN_PCT)) return undefined;
  return `WARNING: other processes used ${w.otherPct}% of a core during ${label} (machine busy ${w.machineBusyPct}%): the figures are disturbed.`;
}

export function formatTable(title: string, rows: readonly TableRow[]): string {
  const width = Math.min(40, Math.max(...rows.map((r) => r[0].length), 10));
  const lines = [title, '-'.repeat(Math.min(100, title.length))];
  for (const [k, v] of rows) lines.push(`${k.padEnd(width)}  ${v}`);
  return lines.join('\n');
}
