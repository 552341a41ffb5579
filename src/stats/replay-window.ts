import type { Logger } from '../log/logger.ts';
import type { StreamPosition } from '../nats/stream-reader.ts';

export interface ReplayWindow {
  /** Age of the oldest message the stream holds: how far back a sleeping client can resume. */
  readonly seconds: number | undefined;
  /** The byte limit is full and the window is shorter than storage.messageTtlSec. */
  readonly shortened: boolean;
}

/** The stream counts as full when it holds this share of its byte limit. */
const FULL_SHARE = 0.9;
/** A shortened window is logged at most this often. */
const WARN_EVERY_MS = 10 * 60_000;

/**
 * How much of the promised replay window (storage.messageTtlSec) the stream really
 * holds. With storage.streamMaxBytes set and `discard: old`, a busy stream drops its
 * oldest messages before they are a day old and clients that slept longer than the
 * real window miss them; that is made visible here (metric, /server-stat/, a log line).
 */
export class ReplayWindowWatch {
  private warnedAt = 0;

  constructor(
    private readonly messageTtlSec: number,
    private readonly log: Logger,
  ) {}

  of(pos: StreamPosition | undefined, nowMs = Date.now()): ReplayWindow {
    if (pos?.firstStoredMs === undefined) return { seconds: undefined, shortened: false };
    const seconds = Math.max(0, Math.floor((nowMs - pos.firstStoredMs) / 1000));
    const full = pos.maxBytes > 0 && pos.bytes >= FULL_SHARE * pos.maxBytes;
    const shortened = full && seconds < this.messageTtlSec;
    if (shortened && nowMs - this.warnedAt >= WARN_EVERY_MS) {
      this.warnedAt = nowMs;
      this.log.warn(
        { replayWindowSec: seconds, messageTtlSec: this.messageTtlSec, streamBytes: pos.bytes, streamMaxBytes: pos.maxBytes },
        'replay window shorter than storage.messageTtlSec: the stream byte limit drops messages early; raise storage.streamMaxBytes',
      );
    }
    return { seconds, shortened };
  }
}
