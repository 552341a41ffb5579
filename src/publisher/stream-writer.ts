import { createHash } from 'node:crypto';
import { IdempotencyConflictError, PublishUnavailableError, toClientError } from '../errors/app-error.ts';
import type { BatchCopy } from '../nats/atomic-batch.ts';
import type { Ack, JetStreamAppender } from '../nats/jetstream-appender.ts';
import type { NatsLink } from '../nats/connection.ts';
import type { StreamWatch } from '../nats/stream-watch.ts';
import { newPublishId, type StoredMessage, type WriteMeta } from '../nats/stored-message.ts';
import { delay } from '../util/deferred.ts';
import { channelKey } from '../wire/channel-id.ts';
import { formatMid } from '../wire/mid.ts';
import type { BatchPolicy } from './batch-policy.ts';
import type { PublishCommand, PublishResult } from './publish-command.ts';

/**
 * Appends one publish to the message stream and resolves only once JetStream has
 * acknowledged every copy. A publish to one receiver is one write. A publish to
 * several is one copy per receiver, each with the shared publish id (`Jp-Pub`) and a
 * way to the first copy, so that a connection holding several of the receivers gets
 * the message once, live and on replay:
 * - as one atomic batch where the stream allows it (BatchPolicy): all copies or none,
 *   at consecutive sequences, so copies 2..n carry their distance to the first
 *   (`Jp-First-Offset`);
 * - otherwise one copy at a time: the first is written alone, and the others carry
 *   its sequence (`Jp-First`). So is a publish whose batch the stream refused as
 *   such (batches not allowed, too many copies; nothing stored), and a retry of a
 *   batch already stored (refused as "duplicate"): each copy is then answered as a
 *   duplicate with its sequence. A copy the stream refuses fails the whole batch,
 *   and the publish, with nothing stored.
 * Every copy carries a message id; retries reuse it, on either path, so the stream's
 * duplicate window stores each copy once however often it is retried.
 *
 * With an idempotency key the message id comes from the caller, so each copy also
 * carries a digest of the publish: when the stream answers "duplicate", the stored
 * copy is read back, and a different digest means the key was used for another
 * message (refused: this one was never stored).
 */
export class StreamWriter {
  constructor(
    private readonly appender: JetStreamAppender,
    private readonly link: NatsLink,
    /** The epoch of mids: now, and for a write the stream acknowledged with a sequence. */
    private readonly epoch: Pick<StreamWatch, 'epochSec' | 'epochOf'>,
    /** The stored message at a sequence (to compare a duplicate with what was stored). */
    private readonly storedAt: (seq: number) => Promise<StoredMessage | null>,
    /** Seconds the server keeps a message of this expiry, or undefined for the stream's age limit. */
    private readonly ttlFor: (expirySec: number) => number | undefined,
    private readonly batches: BatchPolicy,
  ) {}

  /** `deadline` (ms since the epoch) bounds the whole write, retries included. */
  async write(cmd: PublishCommand, deadline: number): Promise<PublishResult> {
    const pubId = cmd.idempotencyKey ?? newPublishId();
    const hash = cmd.idempotencyKey === undefined ? undefined : digest(cmd);
    const receivers = cmd.receivers;
    if (receivers.length === 1) {
      const ack = await this.append(channelKey(receivers[0]!), cmd, pubId, { hash }, deadline);
      if (ack.duplicate && hash !== undefined) await this.checkSame(ack, hash);
      const mid = this.midOf(ack);
      return { mids: [typeof mid === 'string' ? mid : await mid] };
    }
    if (this.batches.fits(receivers.length)) {
      const mids = await this.writeBatch(cmd, pubId, hash, deadline);
      if (mids !== undefined) return { mids };
    }
    return { mids: await this.writeCopies(cmd, pubId, hash, deadline) };
  }

  /** The first copy alone, then the others with its sequence. */
  private async writeCopies(cmd: PublishCommand, pubId: string, hash: string | undefined, deadline: number): Promise<string[]> {
    const firstKey = channelKey(cmd.receivers[0]!);
    const first = await this.append(firstKey, cmd, `${pubId}.0`, { pubId, hash }, deadline);
    await this.checkSame(first, hash);
    const rest = await Promise.all(
      cmd.receivers.slice(1).map((r, i) => this.append(channelKey(r), cmd, `${pubId}.${i + 1}`, { pubId, firstSeq: first.seq, firstKey, hash }, deadline)),
    );
    return Promise.all([first, ...rest].map((ack) => this.midOf(ack)));
  }

  /** Every copy in one atomic batch; undefined when the stream refused the batch as such (nothing of it stored). */
  private async writeBatch(cmd: PublishCommand, pubId: string, hash: string | undefined, deadline: number): Promise<string[] | undefined> {
    const base: WriteMeta = { expirySec: cmd.expirySec, senderId: cmd.senderId, ttlSec: this.ttlFor(cmd.expirySec), pubId, hash };
    const firstKey = channelKey(cmd.receivers[0]!);
    const copies: BatchCopy[] = cmd.receivers.map((r, i) => ({
      key: channelKey(r),
      msgId: `${pubId}.${i}`,
      meta: i === 0 ? base : { ...base, firstOffset: i, firstKey },
    }));
    // A retry asks for an answer to every copy: "incomplete" may hide a copy the stream refuses for good.
    const ack = await this.retrying(deadline, (timeoutMs, attempt) => this.appender.appendBatch(copies, cmd.body, timeoutMs, attempt > 0));
    if (!ack.stored) {
      this.batches.refused(ack.refusal, copies.length, ack.detail);
      return undefined;
    }
    // The batch is stored at consecutive sequences ending at the acknowledged one, all in one epoch.
    const firstSeq = ack.lastSeq - ack.count + 1;
    const known = this.epoch.epochOf(ack.lastSeq);
    const epoch = typeof known === 'number' ? known : await known;
    return copies.map((_, i) => formatMid(epoch, firstSeq + i));
  }

  /** A duplicate names an earlier write of this epoch; a new write is checked against the stream. */
  private midOf(ack: Ack): string | Promise<string> {
    if (ack.duplicate) return formatMid(this.epoch.epochSec, ack.seq);
    const epoch = this.epoch.epochOf(ack.seq);
    return typeof epoch === 'number' ? formatMid(epoch, ack.seq) : epoch.then((e) => formatMid(e, ack.seq));
  }

  /** A duplicate under an idempotency key must be this very publish. */
  private async checkSame(ack: Ack, hash: string | undefined): Promise<void> {
    if (!ack.duplicate || hash === undefined) return;
    const stored = await this.storedAt(ack.seq);
    if (stored !== null && stored.hash !== hash) throw new IdempotencyConflictError();
  }

  private append(key: string, cmd: PublishCommand, msgId: string, copy: Pick<WriteMeta, 'pubId' | 'firstSeq' | 'firstKey' | 'hash'>, deadline: number): Promise<Ack> {
    const meta: WriteMeta = { expirySec: cmd.expirySec, senderId: cmd.senderId, ttlSec: this.ttlFor(cmd.expirySec), ...copy };
    return this.retrying(deadline, (timeoutMs) => this.appender.append(key, cmd.body, msgId, meta, timeoutMs));
  }

  /**
   * Sends until answered, up to `deadline`; a temporary failure is retried (the message
   * ids make that safe). The first attempt is sent at once, without the retry loop's
   * own promise: nearly every write is answered the first time.
   */
  private retrying<T>(deadline: number, send: (timeoutMs: number, attempt: number) => Promise<T>): Promise<T> {
    const remaining = deadline - Date.now();
    if (remaining <= 0 || !this.link.connected) return this.retryFrom(0, deadline, send);
    let first: Promise<T>;
    try {
      first = send(Math.min(remaining, FIRST_ATTEMPT_MS), 0);
    } catch (err) {
      first = Promise.reject(err);
    }
    return first.catch(async (err: unknown) => {
      await this.backOff(err, 0, deadline);
      return this.retryFrom(1, deadline, send);
    });
  }

  private async retryFrom<T>(from: number, deadline: number, send: (timeoutMs: number, attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = from; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new PublishUnavailableError(this.link.connected ? 'timeout' : 'nats-unavailable');
      }
      if (!this.link.connected) {
        // Publishing while disconnected is dropped by the client: wait for the link instead.
        await this.link.waitConnected(remaining);
        continue;
      }
      try {
        // A retry follows a timeout or "no leader", most likely a leader election: ask
        // more often then, so the first write after the election is acknowledged soon.
        return await send(Math.min(remaining, attempt === 0 ? FIRST_ATTEMPT_MS : RETRY_ATTEMPT_MS), attempt);
      } catch (err) {
        await this.backOff(err, attempt, deadline);
      }
    }
  }

  /** Rethrows a final failure; after a temporary one (timed out, no leader yet) waits before the retry. */
  private async backOff(err: unknown, attempt: number, deadline: number): Promise<void> {
    if (!toClientError(err).temporary) throw err;
    await delay(Math.min(25 * 2 ** attempt, 250, Math.max(0, deadline - Date.now())));
  }
}

/** Time the first attempt of a write may take; retries ask again sooner (see retrying). */
const FIRST_ATTEMPT_MS = 2_000;
const RETRY_ATTEMPT_MS = 1_000;

/** What makes two publishes the same message: receivers, expiry, sender and body. */
function digest(cmd: PublishCommand): string {
  const h = createHash('sha256');
  h.update(cmd.receivers.map(channelKey).join('/'));
  h.update(`\0${cmd.expirySec}\0${cmd.senderId ?? ''}\0`);
  h.update(cmd.body);
  return h.digest('hex').slice(0, 32);
}
