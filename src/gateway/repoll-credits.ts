/**
 * Long-poll answers not yet followed by the client's next poll. An answered long poll
 * leaves one credit for its channels and the mid it handed out (the last message's,
 * or the 304's Last-Message-Id, '' for none); the next poll that brings exactly that
 * within `graceMs` takes it and is not charged as a new connection. One broadcast
 * answering thousands of held polls therefore does not get their next polls refused
 * by the connection rate.
 *
 * Bounded: a credit exists only for an answer to an admitted poll and is spent once,
 * so free polls never outnumber answers; a poll that repeats an old mid (a replay
 * each time) or comes late is charged as usual. Entries live at most `graceMs`.
 */
export class RepollCredits {
  /** Key → credits and when they lapse; Map order is grant order, so the oldest come first. */
  private readonly entries = new Map<string, { count: number; until: number }>();

  constructor(private readonly graceMs: number) {}

  get size(): number {
    return this.entries.size;
  }

  grant(keys: readonly string[], mid: string, now = Date.now()): void {
    if (this.graceMs === 0) return;
    this.prune(now);
    const key = creditKey(keys, mid);
    const prev = this.entries.get(key);
    this.entries.delete(key);
    this.entries.set(key, { count: (prev?.count ?? 0) + 1, until: now + this.graceMs });
  }

  /** Spends a credit for these channels and mid if one is there. */
  take(keys: readonly string[], mid: string, now = Date.now()): boolean {
    if (this.graceMs === 0) return false;
    this.prune(now);
    const key = creditKey(keys, mid);
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    if (--entry.count === 0) this.entries.delete(key);
    return true;
  }

  private prune(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.until > now) return;
      this.entries.delete(key);
    }
  }
}

function creditKey(keys: readonly string[], mid: string): string {
  return `${mid} ${keys.join(',')}`;
}
