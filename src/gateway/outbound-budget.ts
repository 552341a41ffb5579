import type { Logger } from '../log/logger.ts';

/** A connection's queue as the budget sees it. */
export interface OutboundQueue {
  /** Bytes queued now (unsent plus the socket's buffer); from now on the budget counts this much for it. */
  recount(): number;
  /** Closes it as too slow (4008) because the process is over its budget. */
  closeOverBudget(): void;
}

/**
 * gateway.maxOutboundBytes: the bytes queued for all WebSockets of the process
 * together. Past it the connections with the largest queues are closed as slow
 * (4008) until the rest fit, rather than new messages being refused: refusing
 * would fail every connection, the quick ones included, for the sake of a few that
 * do not read, while the closed ones lose nothing (they come back in 0.5 s with
 * their mid and read what they missed from the stream, one bounded page at a time).
 *
 * The sum is kept as an estimate: each queue reports what it added when it queues
 * and gives back what it counted when it closes. Sockets drain without telling, so
 * the estimate only overstates; when it passes the budget the real sum is counted,
 * and only what is really over it is shed. That happens on a later turn of the
 * event loop, so a fan-out in progress is never cut short under the hub's feet.
 */
export class OutboundBudget {
  private estimate = 0;
  private scheduled = false;

  constructor(
    private readonly maxBytes: number,
    private readonly queues: () => Iterable<OutboundQueue>,
    private readonly log: Logger,
  ) {}

  /** Bytes queued for all connections, as last counted or reported. */
  get queuedBytes(): number {
    return this.estimate;
  }

  /** A queue grew or shrank by `delta` bytes since it last reported. */
  note(delta: number): void {
    this.estimate += delta;
    if (this.estimate > this.maxBytes && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.enforce());
    }
  }

  /** Counts every queue and closes the largest ones until the rest fit. */
  enforce(): void {
    let total = 0;
    const queued: Array<{ q: OutboundQueue; bytes: number }> = [];
    for (const q of this.queues()) {
      const bytes = q.recount();
      total += bytes;
      if (bytes > 0) queued.push({ q, bytes });
    }
    this.estimate = total;
    if (total <= this.maxBytes) {
      this.scheduled = false;
      return;
    }
    const queuedBytes = total;
    queued.sort((a, b) => b.bytes - a.bytes);
    let closed = 0;
    for (const { q } of queued) {
      if (total <= this.maxBytes) break;
      // Its bytes come off the estimate as it closes (note with the negative count).
      total -= q.recount();
      q.closeOverBudget();
      closed++;
    }
    this.scheduled = false;
    this.log.warn({ queuedBytes, limitBytes: this.maxBytes, closed }, 'outbound buffer limit reached, closing the slowest connections');
  }
}
