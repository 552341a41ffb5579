/**
 * The run as phases on one clock. Each phase has a start, the moment its fault
 * was injected, the moment it was cleared (restart, resume, wake-up) and an end
 * after a settle time; the checker attributes every message and finding to the
 * phase its acknowledgement (or the finding) falls in.
 */
export interface PhaseRec {
  name: string;
  startAt: number;
  faultAt: number | undefined;
  clearedAt: number | undefined;
  endAt: number;
  /** What was done, in order, with times. */
  notes: Array<{ at: number; text: string }>;
}

export class Timeline {
  readonly phases: PhaseRec[] = [];
  readonly origin = Date.now();
  private current: PhaseRec | undefined;

  constructor(private readonly log: (line: string) => void = () => undefined) {}

  begin(phase: string): PhaseRec {
    this.end();
    // A phase that runs again gets a number, so findings are counted once per run of it.
    const runs = this.phases.filter((p) => p.name === phase || p.name.startsWith(`${phase} #`)).length;
    const name = runs === 0 ? phase : `${phase} #${runs + 1}`;
    const p: PhaseRec = { name, startAt: Date.now(), faultAt: undefined, clearedAt: undefined, endAt: Infinity, notes: [] };
    this.phases.push(p);
    this.current = p;
    this.log(`[${this.stamp()}] phase ${name}`);
    return p;
  }

  /** Marks the fault injected now (the first call of a phase counts). */
  fault(text: string): void {
    const p = this.need();
    p.faultAt ??= Date.now();
    this.note(`fault: ${text}`);
  }

  /** Marks the fault cleared now (the last call of a phase counts). */
  cleared(text: string): void {
    const p = this.need();
    p.clearedAt = Date.now();
    this.note(`cleared: ${text}`);
  }

  note(text: string): void {
    const p = this.need();
    p.notes.push({ at: Date.now(), text });
    this.log(`[${this.stamp()}]   ${text}`);
  }

  end(): void {
    if (this.current !== undefined) this.current.endAt = Date.now();
    this.current = undefined;
  }

  private need(): PhaseRec {
    if (this.current === undefined) throw new Error('no phase running');
    return this.current;
  }

  private stamp(): string {
    return `+${((Date.now() - this.origin) / 1000).toFixed(1)}s`;
  }
}
