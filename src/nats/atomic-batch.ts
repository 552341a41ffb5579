import type { WriteMeta } from './stored-message.ts';

/**
 * Atomic batch publish (nats-server 2.12+, stream setting `allow_atomic`): messages
 * carrying one `Nats-Batch-Id` and consecutive `Nats-Batch-Sequence` numbers are
 * staged by the stream leader and stored together, at consecutive sequences, when
 * the one marked `Nats-Batch-Commit` arrives, or not at all. The commit's answer
 * names the last sequence and the count; the other messages are answered (empty, or
 * with an error) only when they carry a reply subject.
 *
 * What the server does with the rest of a write, measured on 2.15.1 (R1 and R3):
 * - `Nats-Msg-Id` inside a batch enters the duplicate window like any write, but a
 *   batch holding an id already stored is refused as a whole (10201), without the
 *   stored sequences: the writer then asks per copy, and each copy is answered as a
 *   duplicate with its sequence.
 * - a batch id can not be reused (a restarted sequence is "incomplete"): every
 *   attempt gets a new one.
 * - a message of the batch the stream refuses (too large, say) is answered with its
 *   error only if it has a reply subject; the commit is answered "incomplete"
 *   (10176), as for a batch cut short or one over the in-flight limit (50 per stream
 *   by default). Nothing is stored.
 * - a limit of the stream reached inside the batch (`discard: new`) is answered on
 *   the commit (10077, code 503), nothing stored.
 * - republish and `Nats-TTL` apply to each stored message as without a batch.
 */

export const H_BATCH_ID = 'Nats-Batch-Id';
export const H_BATCH_SEQUENCE = 'Nats-Batch-Sequence';
export const H_BATCH_COMMIT = 'Nats-Batch-Commit';

/** One message of a batch. */
export interface BatchCopy {
  readonly key: string;
  readonly msgId: string;
  readonly meta: WriteMeta;
}

/**
 * Why a batch was refused as a whole for batch reasons (nothing of it was stored);
 * the copies can still be written one at a time:
 * `duplicate` one of its message ids is already stored (a retry of a stored batch);
 * `disabled` the stream does not allow atomic batches (any more);
 * `too-large` more messages than the server's batch limit.
 */
export type BatchRefusal = 'duplicate' | 'disabled' | 'too-large';

export type BatchAck =
  | { readonly stored: true; readonly lastSeq: number; readonly count: number }
  | { readonly stored: false; readonly refusal: BatchRefusal; readonly detail: string };

const REFUSALS: ReadonlyMap<number, BatchRefusal> = new Map([
  [10201, 'duplicate'],
  [10174, 'disabled'],
  [10199, 'too-large'],
]);

/** An earlier write with the same message id is still being stored (2.11+). */
export const DUPLICATE_IN_PROCESS = 10158;
/** More batches open on the stream or server than it allows (429). */
const TOO_MANY_INFLIGHT = 10210;
/** The batch has a gap or a message the stream did not take; the commit does not say which. */
const INCOMPLETE = 10176;

/**
 * What an error answer to a batch, or to one of its messages, means: a refusal of
 * the batch as such, something a retry may get past (`temporary`: no leader, an
 * earlier attempt still in process, too many batches open, "incomplete"), or a
 * message the stream will not take (`rejected`).
 *
 * "Incomplete" is temporary because it mostly is (an open-batch limit, a lost
 * message, a leader change); when it hides a message the stream refuses for good,
 * the retry, which asks for an answer to every message, gets that message's error.
 */
export function batchErrorKind(error: { code?: number; err_code?: number }): BatchRefusal | 'temporary' | 'rejected' {
  const refusal = REFUSALS.get(error.err_code ?? 0);
  if (refusal !== undefined) return refusal;
  if (error.code === 503 || error.err_code === DUPLICATE_IN_PROCESS || error.err_code === TOO_MANY_INFLIGHT || error.err_code === INCOMPLETE) return 'temporary';
  return 'rejected';
}

/** The headers that make message `index` (0-based) of `count` part of batch `batchId` (name, value, …). */
export function batchHeaders(batchId: string, index: number, count: number): string[] {
  const pairs = [H_BATCH_ID, batchId, H_BATCH_SEQUENCE, String(index + 1)];
  if (index === count - 1) pairs.push(H_BATCH_COMMIT, '1');
  return pairs;
}
