import type { Refusal } from '../telemetry/telemetry.ts';
import { TokenBucket } from '../util/token-bucket.ts';

/** Held by an admitted connection until its replay is queued (or it never will be). */
export interface AdmissionTicket {
  /** Idempotent. */
  release(): void;
}

export interface AdmissionLimits {
  /** New connections accepted per second, with a burst of the same size. */
  maxNewConnectionsPerSec: number;
  /** Replays waiting for a slot, counting admitted connections whose replay is not queued yet. */
  maxQueuedReplays: number;
}

/**
 * Which new connections a gateway takes: none while draining; at most
 * `maxNewConnectionsPerSec`; and a connection that brings a mid only while fewer
 * than `maxQueuedReplays` replays wait, counting those admitted but not queued yet,
 * so a burst cannot get past the bound. 10,000 clients returning at once therefore
 * cannot starve live delivery or NATS; the refused ones get 503 and come back.
 */
export class Admission {
  private readonly bucket: TokenBucket;
  private draining = false;
  /** Tickets of connections with a mid whose replay is not queued yet. */
  private replaysPending = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    /** Replays queued for a slot now. */
    private readonly replaysWaiting: () => number,
  ) {
    this.bucket = new TokenBucket(limits.maxNewConnectionsPerSec, limits.maxNewConnectionsPerSec);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on every connection is refused with 'draining'. */
  startDraining(): void {
    this.draining = true;
  }

  /**
   * A ticket to release once the connection's replay is queued, or the reason it is
   * refused. `uncharged` is asked only when the rate would be charged: true lets the
   * connection in without a token (a long poll's next poll, see RepollCredits).
   */
  admit(withReplay: boolean, uncharged?: () => boolean): AdmissionTicket | Refusal {
    if (this.draining) return 'draining';
    if (withReplay && this.replaysWaiting() + this.replaysPending >= this.limits.maxQueuedReplays) return 'replay-queue';
    if (uncharged?.() !== true && !this.bucket.take()) return 'connection-rate';
    if (!withReplay) return NO_REPLAY;
    this.replaysPending++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.replaysPending--;
      },
    };
  }
}

const NO_REPLAY: AdmissionTicket = { release() {} };
