/**
 * The `daily` block of server stats (spec §5.5): requests by command and messages
 * by type, reset at local midnight as the reference does.
 */
export class DailyCounters {
  private day = localDay(Date.now());
  /** When the day ends (local midnight): the date is only worked out again from then on. */
  private dayEndsMs = nextMidnight(Date.now());
  private requests: Record<string, number> = {};
  private messages: Record<string, number> = {};

  countRequest(command: string): void {
    this.roll();
    this.requests[command] = (this.requests[command] ?? 0) + 1;
  }

  countMessage(type: string | undefined): void {
    this.roll();
    const key = type !== undefined && /^[a-zA-Z0-9_*-]{1,32}$/.test(type) ? type : 'unknown';
    this.messages[key] = (this.messages[key] ?? 0) + 1;
  }

  snapshot(): { requests: Record<string, number>; messages: Record<string, number> } {
    this.roll();
    return { requests: { ...this.requests }, messages: { ...this.messages } };
  }

  private roll(): void {
    const now = Date.now();
    if (now < this.dayEndsMs) return;
    this.dayEndsMs = nextMidnight(now);
    const today = localDay(now);
    if (today !== this.day) {
      this.day = today;
      this.requests = {};
      this.messages = {};
    }
  }
}

function nextMidnight(ms: number): number {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime();
}

function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}
