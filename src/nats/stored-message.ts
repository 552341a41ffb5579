import { nuid, type MsgHdrs } from '@nats-io/transport-node';
import { PublishHeaders } from './publish-headers.ts';

/**
 * How a message is laid out in the stream. The body is the published text, as is;
 * everything else travels in headers so that a gateway never parses the body.
 *
 *   Nats-Msg-Id  publish id (copy n of a multi-receiver publish: "<id>.<n>")
 *   Jp-Expiry    seconds the message stays replayable; absent = 0 = live only
 *   Jp-Sender    public id of the client that sent it; absent = the backend
 *   Jp-Pub       publish id, on every copy of a publish with several receivers
 *   Jp-First     sequence of the first copy, on copies 2..n written one at a time
 *   Jp-First-Offset  on copies 2..n of an atomic batch instead: how many sequences back
 *                the first copy is (a batch is stored at consecutive sequences, and the
 *                first copy's sequence is not known before the batch is committed)
 *   Jp-First-Key channel key of the first copy, on copies 2..n
 *   Jp-Hash      digest of receivers, expiry, sender and body, on publishes with an
 *                idempotency key: a retry is the same message only when it matches
 */

export const H_EXPIRY = 'Jp-Expiry';
export const H_SENDER = 'Jp-Sender';
export const H_PUB = 'Jp-Pub';
export const H_FIRST = 'Jp-First';
export const H_FIRST_OFFSET = 'Jp-First-Offset';
export const H_FIRST_KEY = 'Jp-First-Key';
export const H_HASH = 'Jp-Hash';
/** The server's duplicate detection id. */
export const H_MSG_ID = 'Nats-Msg-Id';
/** The server's per-message TTL header (nats-server 2.11+). */
export const H_TTL = 'Nats-TTL';

export interface StoredMessage {
  /** Stream sequence: the counter part of the mid. */
  readonly seq: number;
  /** Channel key of the copy (`priv.<id>` / `pub.<id>`). */
  readonly key: string;
  readonly body: Uint8Array;
  readonly expirySec: number;
  /** Milliseconds since the epoch when the message was stored (or first seen live). */
  readonly timeMs: number;
  readonly senderId: string | undefined;
  /** Set on copies of a publish addressed to several receivers. */
  readonly pubId: string | undefined;
  /** Sequence of the publish's first copy; undefined on the first copy itself. */
  readonly firstSeq: number | undefined;
  /** Channel key of the publish's first copy, on copies 2..n (absent on messages stored before it was written). */
  readonly firstKey?: string | undefined;
  /** Previous sequence on this channel, when known (live messages). */
  readonly prevSeq: number | undefined;
  /** Digest of the publish, on publishes with an idempotency key. */
  readonly hash?: string | undefined;
}

export interface WriteMeta {
  expirySec: number;
  senderId?: string | undefined;
  pubId?: string | undefined;
  firstSeq?: number | undefined;
  /** Copies back to the first copy, on copies 2..n of an atomic batch (in place of firstSeq). */
  firstOffset?: number | undefined;
  firstKey?: string | undefined;
  hash?: string | undefined;
  /** Seconds the server keeps this message (per-message TTL); undefined: the stream's age limit. */
  ttlSec?: number | undefined;
}

/**
 * The headers of one copy: its metadata, its message id (`Nats-Msg-Id`), then `extra`
 * (name, value, …: the batch headers), in this order.
 */
export function writeHeaders(meta: WriteMeta, msgId: string, extra: readonly string[] = []): MsgHdrs {
  const pairs: string[] = [];
  if (meta.expirySec > 0) pairs.push(H_EXPIRY, String(meta.expirySec));
  if (meta.senderId !== undefined) pairs.push(H_SENDER, meta.senderId);
  if (meta.pubId !== undefined) pairs.push(H_PUB, meta.pubId);
  if (meta.firstSeq !== undefined) pairs.push(H_FIRST, String(meta.firstSeq));
  if (meta.firstOffset !== undefined) pairs.push(H_FIRST_OFFSET, String(meta.firstOffset));
  if (meta.firstKey !== undefined) pairs.push(H_FIRST_KEY, meta.firstKey);
  if (meta.hash !== undefined) pairs.push(H_HASH, meta.hash);
  if (meta.ttlSec !== undefined) pairs.push(H_TTL, `${meta.ttlSec}s`);
  pairs.push(H_MSG_ID, msgId, ...extra);
  return new PublishHeaders(pairs);
}

/** Reads the jetpull headers of a republished or directly fetched message. */
export function decodeStored(
  h: MsgHdrs,
  key: string,
  body: Uint8Array,
  seq: number,
  timeMs: number,
  prevSeq: number | undefined,
): StoredMessage {
  const expiry = h.get(H_EXPIRY);
  const first = h.get(H_FIRST);
  const offset = first === '' ? h.get(H_FIRST_OFFSET) : '';
  return {
    seq,
    key,
    body,
    expirySec: expiry === '' ? 0 : Number(expiry),
    timeMs,
    senderId: h.get(H_SENDER) || undefined,
    pubId: h.get(H_PUB) || undefined,
    firstSeq: first !== '' ? Number(first) : offset !== '' ? seq - Number(offset) : undefined,
    firstKey: h.get(H_FIRST_KEY) || undefined,
    prevSeq,
    hash: h.get(H_HASH) || undefined,
  };
}

/** A message stays replayable while `time + expiry` is in the future. */
export function isReplayable(m: StoredMessage, nowMs: number): boolean {
  return m.expirySec > 0 && m.timeMs + m.expirySec * 1000 > nowMs;
}

/** A new unique publish id (the message id of a publish without an idempotency key). */
export function newPublishId(): string {
  return nuid.next();
}
