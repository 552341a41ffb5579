import type { StoredMessage } from '../nats/stored-message.ts';
import type { ChannelRead } from './replay-reader.ts';

/** What a held message is counted as beyond its body (the object, its key, its headers' fields). */
const MESSAGE_OVERHEAD_BYTES = 300;

/**
 * The message with a body of its own. The NATS client hands out bodies as views into
 * the buffers it read the socket into; a view held for seconds keeps the whole buffer
 * (measured: 115 MiB held by a window counted at 64 MiB), so what the window counts
 * would not be what it holds.
 */
function owned(m: StoredMessage): StoredMessage {
  const b = m.body;
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? m : { ...m, body: new Uint8Array(b) };
}

/**
 * A stretch of the stream that replay scans read, kept for the replays that come
 * after: during a reconnect wave clients keep arriving while a scan runs, and each
 * later one is served from what was read (plus a short read of what was stored since)
 * instead of scanning the same stretch again. Holds every message with a sequence in
 * (`from`, `to`], of every channel, up to `maxBytes`; beyond it the oldest go first.
 * Unused for `idleMs` (the wave is over), it lets go of everything by itself.
 */
export class ScanWindow {
  private byKey = new Map<string, StoredMessage[]>();
  private oldest: StoredMessage[] = [];
  private head = 0;
  private heldBytes = 0;
  private lower = 0;
  private upper = 0;
  private open = false;
  private epoch = 0;
  private usedAt = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBytes: number,
    /** Unused this long, the window is let go. */
    private readonly idleMs: number,
  ) {}

  /** Nothing held; the window opens with the next scan. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Every message with a sequence above this … */
  get from(): number {
    return this.lower;
  }

  /** … and up to this is held. */
  get to(): number {
    return this.upper;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** Opens on (`after`, `after`] for `epoch`, or lets go of a window of another epoch or unused for too long. */
  prepare(epoch: number, now = Date.now()): void {
    if (this.open && (epoch !== this.epoch || now - this.usedAt > this.idleMs)) this.clear();
    this.epoch = epoch;
    this.touch(now);
  }

  /** Starts holding from `after` (nothing held yet). */
  openAt(after: number): void {
    this.clear();
    this.open = true;
    this.lower = after;
    this.upper = after;
    this.touch(Date.now());
  }

  /** True when the window holds everything after `seq` up to its end, for `epoch`. */
  covers(seq: number, epoch: number, now = Date.now()): boolean {
    return this.open && this.epoch === epoch && seq >= this.lower && now - this.usedAt <= this.idleMs;
  }

  /** A message read after the window's end; `to` moves with it. */
  append(read: StoredMessage): void {
    const m = owned(read);
    const list = this.byKey.get(m.key);
    if (list === undefined) this.byKey.set(m.key, [m]);
    else list.push(m);
    this.oldest.push(m);
    this.heldBytes += m.body.length + MESSAGE_OVERHEAD_BYTES;
    this.upper = Math.max(this.upper, m.seq);
    while (this.heldBytes > this.maxBytes && this.head < this.oldest.length) this.evictOldest();
  }

  /** The window's end: everything up to `seq` has been read (a scan's end, past the last message it found). */
  advanceTo(seq: number): void {
    this.upper = Math.max(this.upper, seq);
    this.touch(Date.now());
  }

  /** Messages older than the window, in sequence order, read from (`after`, `from`]. */
  prepend(after: number, messages: readonly StoredMessage[]): void {
    if (after >= this.lower) return;
    const fresh = messages.filter((m) => m.seq > after && m.seq <= this.lower).map(owned);
    const groups = new Map<string, StoredMessage[]>();
    for (const m of fresh) {
      const g = groups.get(m.key);
      if (g === undefined) groups.set(m.key, [m]);
      else g.push(m);
      this.heldBytes += m.body.length + MESSAGE_OVERHEAD_BYTES;
    }
    for (const [key, g] of groups) this.byKey.set(key, [...g, ...(this.byKey.get(key) ?? [])]);
    this.oldest = [...fresh, ...this.oldest.slice(this.head)];
    this.head = 0;
    this.lower = after;
    while (this.heldBytes > this.maxBytes && this.head < this.oldest.length) this.evictOldest();
  }

  /** One channel's messages after `afterSeq`, at most `limit`, as a direct read of the stream would give them. */
  read(key: string, afterSeq: number, limit: number): ChannelRead {
    this.touch(Date.now());
    const list = this.byKey.get(key) ?? [];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    const messages = list.slice(lo, lo + limit);
    const capped = lo + limit < list.length;
    return { key, messages, capped, lastSeq: capped ? messages.at(-1)!.seq : Math.max(afterSeq, this.upper) };
  }

  clear(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.byKey = new Map();
    this.oldest = [];
    this.head = 0;
    this.heldBytes = 0;
    this.open = false;
    this.lower = 0;
    this.upper = 0;
  }

  /** Marks the window used at `now`; an open window then lets go once unused for idleMs. */
  private touch(now: number): void {
    this.usedAt = now;
    if (this.open && this.idleTimer === undefined) this.armIdle();
  }

  private armIdle(): void {
    this.idleTimer = setTimeout(
      () => {
        this.idleTimer = undefined;
        if (!this.open) return;
        if (Date.now() - this.usedAt >= this.idleMs) this.clear();
        else this.armIdle();
      },
      Math.max(1, this.usedAt + this.idleMs - Date.now()),
    );
    // A wave's leftovers never keep the process alive.
    this.idleTimer.unref();
  }

  private evictOldest(): void {
    const m = this.oldest[this.head++]!;
    this.heldBytes -= m.body.length + MESSAGE_OVERHEAD_BYTES;
    this.lower = m.seq;
    const list = this.byKey.get(m.key)!;
    list.shift();
    if (list.length === 0) this.byKey.delete(m.key);
    // Compact now and then so the array does not keep every evicted slot.
    if (this.head > 4096 && this.head * 2 > this.oldest.length) {
      this.oldest = this.oldest.slice(this.head);
      this.head = 0;
    }
    if (this.head >= this.oldest.length) {
      this.oldest = [];
      this.head = 0;
      this.upper = Math.max(this.upper, this.lower);
    }
  }
}
