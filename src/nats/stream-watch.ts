import { StreamMissingError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import type { StreamPosition, StreamReader } from './stream-reader.ts';

/**
 * Keeps an eye on the message stream while the process runs: its position (for the
 * gateway's catch-up starting point) and its identity. The stream's creation time is
 * the epoch of every mid; if the stream is deleted (a lost volume, an operator) it is
 * re-created, and if it was re-created by anyone the epoch moves on, so mids never go
 * backwards and clients resume in the new epoch.
 */
export class StreamWatch {
  private timer: NodeJS.Timeout | undefined;
  /** The position read by the last check that succeeded. */
  private last: StreamPosition | undefined;
  /** Highest sequence acknowledged in this epoch: acknowledgements on one connection come in stream order. */
  private highestAcked = 0;
  private checking: Promise<void> | undefined;
  private readonly recreatedListeners = new Set<(epochSec: number, lastSeq: number) => void>();
  private readonly positionListeners = new Set<(pos: StreamPosition | undefined) => void>();

  constructor(
    private readonly reader: StreamReader,
    /** Creates the stream as declared; resolves with its creation time in unix seconds. */
    private readonly recreate: () => Promise<number>,
    private epoch: number,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** The stream's position at the last successful check. */
  get position(): StreamPosition | undefined {
    return this.last;
  }

  /** Unix seconds of the stream's creation: the epoch part of every mid. */
  get epochSec(): number {
    return this.epoch;
  }

  /**
   * The epoch for a write the stream just acknowledged with `seq` (not a duplicate).
   * Acknowledgements arrive in stream order, so a sequence at or below an earlier one
   * means the stream is not the one the epoch belongs to: the stream is checked (and
   * the epoch moved on) before the mid is formed. Also waits for a check in progress.
   */
  epochOf(seq: number): number | Promise<number> {
    if (seq > this.highestAcked && this.checking === undefined) {
      // The common case, on the publish hot path: no promise.
      this.highestAcked = seq;
      return this.epoch;
    }
    return this.check().then(() => {
      this.highestAcked = Math.max(this.highestAcked, seq);
      return this.epoch;
    });
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Called with the new epoch, and the new stream's last sequence when known (0 for a fresh one), after the stream was re-created. */
  onRecreated(listener: (epochSec: number, lastSeq: number) => void): () => void {
    this.recreatedListeners.add(listener);
    return () => this.recreatedListeners.delete(listener);
  }

  /** Called after each check with the stream's position, or undefined when it could not be read. */
  onPosition(listener: (pos: StreamPosition | undefined) => void): () => void {
    this.positionListeners.add(listener);
    return () => this.positionListeners.delete(listener);
  }

  /** One check now (concurrent calls share it). */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    let pos: StreamPosition | undefined;
    try {
      pos = await this.reader.position();
    } catch (err) {
      if (err instanceof StreamMissingError) {
        this.log.warn({ epoch: this.epoch }, 'message stream missing, re-creating it');
        try {
          const created = await this.recreate();
          // Messages may already be stored in the new stream: where it ends now, as far as known.
          const now = await this.reader.position().catch(() => undefined);
          this.changed(created, now?.lastSeq ?? Number.MAX_SAFE_INTEGER);
        } catch (createErr) {
          this.log.error({ err: createErr }, 'message stream could not be re-created');
        }
      }
      for (const l of this.positionListeners) l(undefined);
      return;
    }
    this.last = pos;
    const created = Math.floor(pos.createdMs / 1000);
    if (created !== this.epoch) this.changed(created, pos.lastSeq);
    for (const l of this.positionListeners) l(pos);
  }

  private changed(created: number, lastSeq: number): void {
    if (created === this.epoch) return;
    this.log.warn({ fromEpoch: this.epoch, toEpoch: created }, 'message stream was re-created, mids start a new epoch');
    this.epoch = created;
    this.highestAcked = 0;
    for (const l of this.recreatedListeners) l(created, lastSeq);
  }
}
