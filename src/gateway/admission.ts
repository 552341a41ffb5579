import type { Refusal } from '../telemetry/telemetry.ts';
import { TokenBucket } from '../util/token-bucket.ts';
import { AddressTable, type AddressLimits } from './address-table.ts';

/** Held by an admitted connection: its place in the counts until it ends, and its replay's place until queued. */
export interface AdmissionTicket {
  /** The connection's replay is queued (or it never will be). Idempotent. */
  release(): void;
  /** The connection ended: it no longer counts against its address or the process. Idempotent; releases too. */
  leave(): void;
}

export interface AdmissionLimits extends AddressLimits {
  /** New connections accepted per second, with a burst of the same size. */
  maxNewConnectionsPerSec: number;
  /** Replays waiting for a slot, counting admitted connections whose replay is not queued yet. */
  maxQueuedReplays: number;
}

/**
 * Which new connections a gateway takes: none while draining or while memory is
 * above its watermark; none past the open connections of the process or of the
 * client's address; at most `maxNewConnectionsPerIpPerSec` from one address and
 * `maxNewConnectionsPerSec` in all; and a connection that brings a mid only while
 * fewer than `maxQueuedReplays` replays wait, counting those admitted but not queued
 * yet, so a burst cannot get past the bound. 10,000 clients returning at once
 * therefore cannot starve live delivery or NATS, nor one address everybody else; the
 * refused ones are answered 503 or 429 and come back.
 *
 * The checks that take nothing come first. The address's token is taken before the
 * process's, so one address over its rate cannot spend everybody's.
 */
export class Admission {
  private readonly bucket: TokenBucket;
  private readonly addresses: AddressTable;
  private draining = false;
  /** Tickets of connections with a mid whose replay is not queued yet. */
  private replaysPending = 0;

  constructor(
    private readonly limits: AdmissionLimits,
    /** Replays queued for a slot now. */
    private readonly replaysWaiting: () => number,
    /** True while memory is above the watermark. */
    private readonly memoryHigh: () => boolean = () => false,
  ) {
    this.bucket = new TokenBucket(limits.maxNewConnectionsPerSec, limits.maxNewConnectionsPerSec);
    this.addresses = new AddressTable(limits);
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Open connections admitted and not ended. */
  get connections(): number {
    return this.addresses.connections;
  }

  /** From now on every connection is refused with 'draining'. */
  startDraining(): void {
    this.draining = true;
  }

  /**
   * A ticket for a connection from `addressKey` (http/client-address.ts), or the
   * reason it is refused. `uncharged` is asked only when the rates would be charged:
   * true lets the connection in without a token of its address or of the process (a
   * long poll's next poll, see RepollCredits).
   */
  admit(withReplay: boolean, addressKey: string, uncharged?: () => boolean): AdmissionTicket | Refusal {
    if (this.draining) return 'draining';
    if (this.memoryHigh()) return 'memory';
    const full = this.addresses.refusesOpen(addressKey);
    if (full !== undefined) return full;
    if (withReplay && this.replaysWaiting() + this.replaysPending >= this.limits.maxQueuedReplays) return 'replay-queue';
    if (uncharged?.() !== true) {
      if (!this.addresses.takeToken(addressKey)) return 'connection-rate-per-ip';
      if (!this.bucket.take()) return 'connection-rate';
    }
    this.addresses.enter(addressKey);
    if (withReplay) this.replaysPending++;
    return new Ticket(this, addressKey, withReplay);
  }

  /** @internal ticket bookkeeping */
  replayQueued(): void {
    this.replaysPending--;
  }

  /** @internal */
  left(addressKey: string): void {
    this.addresses.leave(addressKey);
  }
}

class Ticket implements AdmissionTicket {
  private open = true;

  constructor(
    private readonly admission: Admission,
    private readonly addressKey: string,
    private replayHeld: boolean,
  ) {}

  release(): void {
    if (!this.replayHeld) return;
    this.replayHeld = false;
    this.admission.replayQueued();
  }

  leave(): void {
    this.release();
    if (!this.open) return;
    this.open = false;
    this.admission.left(this.addressKey);
  }
}
