import { round } from './util.ts';

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Latency samples (ms) in a preallocated typed array; beyond the capacity samples are counted, not kept. */
export class Samples {
  private data: Float64Array;
  private n = 0;
  dropped = 0;

  constructor(private readonly capacity = 1 << 20) {
    this.data = new Float64Array(Math.min(capacity, 1024));
  }

  add(v: number): void {
    if (this.n === this.data.length) {
      if (this.n >= this.capacity) {
        this.dropped++;
        return;
      }
      const bigger = new Float64Array(Math.min(this.capacity, this.data.length * 2));
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = v;
  }

  get count(): number {
    return this.n;
  }

  reset(): void {
    this.n = 0;
    this.dropped = 0;
  }

  summary(): Percentiles {
    if (this.n === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
    const sorted = this.data.slice(0, this.n).sort();
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += sorted[i]!;
    const at = (q: number): number => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil(q * this.n) - 1))]!;
    return {
      count: this.n,
      p50: round(at(0.5)),
      p90: round(at(0.9)),
      p99: round(at(0.99)),
      max: round(sorted[this.n - 1]!),
      mean: round(sum / this.n),
    };
  }
}

export function fmtLatency(p: Percentiles): string {
  if (p.count === 0) return 'no samples';
  return `p50 ${p.p50} / p90 ${p.p90} / p99 ${p.p99} / max ${p.max} ms (n=${p.count})`;
}
