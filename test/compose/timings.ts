/** Measured durations and figures, printed as one table when the suite ends. */
const rows: Array<{ what: string; value: string }> = [];

export function record(what: string, ms: number): void {
  rows.push({ what, value: `${(ms / 1000).toFixed(1)} s` });
}

export function note(what: string, value: string | number): void {
  rows.push({ what, value: String(value) });
}

/** The preparation steps run.sh timed (JETPULL_COMPOSE_PREP="install=812 dockerd=1500 …"). */
export function recordPreparation(prep: string | undefined): void {
  for (const item of (prep ?? '').split(/\s+/).filter(Boolean)) {
    const [name, ms] = item.split('=');
    if (name && ms) record(`prepare: ${name}`, Number(ms));
  }
}

export function printTimings(): void {
  if (rows.length === 0) return;
  const width = Math.max(...rows.map((r) => r.what.length));
  const lines = rows.map((r) => `  ${r.what.padEnd(width)}  ${r.value}`);
  process.stdout.write(`\ncompose: timings\n${lines.join('\n')}\n\n`);
}
