import type { Received } from './frames.ts';

/**
 * The soak's bookkeeping. Every checked channel has a sequence of its own; a publish
 * takes the next number of each channel it goes to, and only one publish per channel
 * is in flight at a time, so stream order, mid order and body order agree and a
 * receiver can check the order per channel. Publishes are numbered (`n`) as well:
 * a client must see each publish to its channels once, whichever of its channels it
 * came by.
 */

const PENDING = 0;
const ACKED = 1;
const FAILED = 2;

interface Channel {
  readonly id: string;
  nextSeq: number;
  busy: boolean;
  /** Publishes to this channel, in order. */
  readonly pubs: number[];
}

export class Ledger {
  private readonly byId = new Map<string, number>();
  readonly channels: Channel[] = [];
  private readonly targets: Array<readonly number[]> = [];
  private readonly startedAt: number[] = [];
  private readonly status: number[] = [];

  /** Index of a checked channel (32-hex id), made on first use. */
  channel(id: string): number {
    let i = this.byId.get(id);
    if (i === undefined) {
      i = this.channels.length;
      this.channels.push({ id, nextSeq: 0, busy: false, pubs: [] });
      this.byId.set(id, i);
    }
    return i;
  }

  isBusy(chans: readonly number[]): boolean {
    return chans.some((c) => this.channels[c]!.busy);
  }

  /** Starts a publish to `chans` (none busy, or undefined): its number and the body's `s` object. */
  begin(chans: readonly number[], now: number): { n: number; seqs: Record<number, number> } | undefined {
    if (this.isBusy(chans)) return undefined;
    const n = this.targets.length;
    const seqs: Record<number, number> = {};
    for (const c of chans) {
      const ch = this.channels[c]!;
      ch.busy = true;
      seqs[c] = ch.nextSeq++;
      ch.pubs.push(n);
    }
    this.targets.push(chans);
    this.startedAt.push(now);
    this.status.push(PENDING);
    return { n, seqs };
  }

  /** A publish answered: 200 (acked) or anything else (not expected anywhere, welcome if it arrives). */
  end(n: number, acked: boolean): void {
    this.status[n] = acked ? ACKED : FAILED;
    for (const c of this.targets[n]!) this.channels[c]!.busy = false;
  }

  get publishes(): number {
    return this.targets.length;
  }

  counts(): { acked: number; failed: number; pending: number } {
    let acked = 0;
    let failed = 0;
    let pending = 0;
    for (const s of this.status) {
      if (s === ACKED) acked++;
      else if (s === FAILED) failed++;
      else pending++;
    }
    return { acked, failed, pending };
  }

  /** What `t` should have received (acked publishes to its channels started after it first connected) and did not. */
  missing(t: Tracker): { expected: number; lost: number[] } {
    const seen = new Set<number>();
    const lost: number[] = [];
    let expected = 0;
    for (const c of t.chans) {
      for (const n of this.channels[c]!.pubs) {
        if (seen.has(n)) continue;
        seen.add(n);
        if (this.status[n] !== ACKED || this.startedAt[n]! < t.since) continue;
        expected++;
        if (!t.got.has(n)) lost.push(n);
      }
    }
    return { expected, lost };
  }

  describe(n: number): string {
    const chans = this.targets[n] ?? [];
    return `publish #${n} to ${chans.map((c) => this.channels[c]!.id).join('/')} started ${new Date(this.startedAt[n] ?? 0).toISOString()}`;
  }
}

/** The receiving side of one checked client, across all its connections. */
export class Tracker {
  readonly got = new Set<number>();
  private readonly mine: Set<number>;
  private readonly lastSeq = new Map<number, number>();
  /** When the first connection opened: publishes started before it are not expected. */
  since = Infinity;
  /** Highest mid received: the client resumes from it. */
  mid: string | undefined;
  /** The mid the current connection must stay above. */
  private connFloor: string | undefined;
  messages = 0;
  duplicates = 0;
  outOfOrder = 0;
  midRegressions = 0;
  misrouted = 0;
  foreign = 0;
  connections = 0;
  resumes = 0;
  readonly firstProblems: string[] = [];

  constructor(
    readonly name: string,
    readonly chans: readonly number[],
  ) {
    this.mine = new Set(chans);
  }

  /** A connection (or a poll) is being opened, resuming from `resumedFrom` if given: its messages must lie above it. */
  beginConnection(resumedFrom: string | undefined): void {
    this.connFloor = resumedFrom;
  }

  /**
   * The connection is open (a WebSocket's 101, a long poll's first answer): publishes
   * started from now on must reach this client.
   */
  markOpen(now: number, resumed: boolean): void {
    if (this.since === Infinity) this.since = now;
    this.connections++;
    if (resumed) this.resumes++;
  }

  /** A mid the server handed over without a message (a long poll's 304 Last-Message-Id). */
  adoptMid(mid: string): void {
    if (this.mid === undefined || mid > this.mid) this.mid = mid;
  }

  private problem(text: string): void {
    if (this.firstProblems.length < 5) this.firstProblems.push(`${this.name}: ${text}`);
  }

  onMessage(r: Received): void {
    this.messages++;
    if (this.connFloor !== undefined && r.mid <= this.connFloor) {
      this.midRegressions++;
      this.problem(`mid ${r.mid} not above ${this.connFloor} on one connection`);
    }
    this.connFloor = r.mid;
    if (this.mid === undefined || r.mid > this.mid) this.mid = r.mid;
    const p = r.event?.params as { n?: unknown; s?: Record<string, number> } | undefined;
    if (r.event?.command !== 'm' || typeof p?.n !== 'number' || p.s === undefined) {
      this.foreign++;
      return;
    }
    const n = p.n;
    if (this.got.has(n)) {
      this.duplicates++;
      this.problem(`publish #${n} received again (mid ${r.mid})`);
      return;
    }
    this.got.add(n);
    let ours = false;
    for (const k of Object.keys(p.s)) {
      const c = Number(k);
      if (!this.mine.has(c)) continue;
      ours = true;
      const seq = p.s[k]!;
      const last = this.lastSeq.get(c);
      if (last !== undefined && seq <= last) {
        this.outOfOrder++;
        this.problem(`channel ${c}: seq ${seq} after ${last} (publish #${n})`);
      } else {
        this.lastSeq.set(c, seq);
      }
    }
    if (!ours) this.misrouted++;
  }
}

/** Received flood messages (client publishes) of one sink, by flood sequence. */
export class FloodTracker {
  private got = new Uint8Array(1 << 16);
  received = 0;
  duplicates = 0;
  mid: string | undefined;

  add(seq: number, mid: string): void {
    if (this.mid === undefined || mid > this.mid) this.mid = mid;
    if (seq >= this.got.length) {
      const bigger = new Uint8Array(Math.max(this.got.length * 2, seq + 1));
      bigger.set(this.got);
      this.got = bigger;
    }
    if (this.got[seq] === 1) {
      this.duplicates++;
      return;
    }
    this.got[seq] = 1;
    this.received++;
  }

  has(seq: number): boolean {
    return seq < this.got.length && this.got[seq] === 1;
  }
}
