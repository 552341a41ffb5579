import type { PublishPath } from '../telemetry/telemetry.ts';
import type { Receiver } from '../wire/channel-id.ts';

/** One logical message to store and deliver, already validated by its entry point. */
export interface PublishCommand {
  /** Unique receivers, at least one. */
  readonly receivers: readonly Receiver[];
  readonly body: Uint8Array;
  /** Seconds the message stays replayable, already capped at storage.messageTtlSec; 0 = live only. */
  readonly expirySec: number;
  /** Public id of the sending client; undefined for the backend. */
  readonly senderId?: string | undefined;
  /** Caller-chosen id: a retried publish with the same id is stored once. */
  readonly idempotencyKey?: string | undefined;
  /** Statistics label (protobuf `type`), not stored. */
  readonly type?: string | undefined;
  /** Which entry point it came through, for metrics. */
  readonly source?: PublishPath | undefined;
}

export interface PublishResult {
  /** The mid stored for each receiver, in the order of `receivers`. */
  readonly mids: readonly string[];
}

/**
 * What entry points publish through: resolves with the stored mids once every copy
 * is acknowledged, rejects with an AppError (temporary or not) otherwise.
 */
export interface Publisher {
  publish(cmd: PublishCommand): Promise<PublishResult>;
}

/** Clamps a requested expiry into [0, messageTtlSec]; anything unusable is 0. */
export function capExpiry(requested: unknown, messageTtlSec: number): number {
  const n = typeof requested === 'number' ? requested : Number(requested);
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), messageTtlSec);
}
