import { createInbox, nuid, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { PayloadTooLargeError, PublishRejectedError, PublishUnavailableError } from '../errors/app-error.ts';
import { batchErrorKind, batchHeaders, DUPLICATE_IN_PROCESS, type BatchAck, type BatchCopy } from './atomic-batch.ts';
import { parsePubAck, type PubAck } from './pub-ack.ts';
import { writeHeaders, type WriteMeta } from './stored-message.ts';
import { storedSubject } from './subjects.ts';

/** What JetStream answered for one stored message. */
export interface Ack {
  readonly seq: number;
  readonly duplicate: boolean;
}

type Pending =
  | { batch: false; resolve(ack: Ack): void; reject(err: Error): void; deadline: number }
  | { batch: true; count: number; resolve(ack: BatchAck): void; reject(err: Error): void; deadline: number };

interface Queued {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  /** The write it answers to; every message of a batch has the batch's. */
  token: string;
  /** false on the messages of a batch before its commit: only the commit is answered. */
  reply: boolean;
}

const SWEEP_MS = 50;

/**
 * Appends messages to JetStream and collects their acknowledgements, built for the
 * publish hot path. The general request API of the NATS client costs a timer, a
 * promise race and an Error with a stack trace per request (measured: the biggest
 * item of jetpull's own CPU when publishing). Here every acknowledgement comes back
 * on one inbox subscription, timeouts are checked by one sweep every 50 ms, and the
 * writes requested during one event-loop turn go out together, so the client sends
 * them to the server in one socket write.
 *
 * Failures are the app's own errors: PublishUnavailableError (temporary: no leader,
 * no answer in time, connection closed; a retry with the same message id is safe) and
 * PublishRejectedError (permanent: the stream refused the message). A batch the
 * stream refuses as a whole is an answer, not an error (see atomic-batch.ts).
 */
export class JetStreamAppender {
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly pending = new Map<string, Pending>();
  private queue: Queued[] = [];
  private scheduled = false;
  private next = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly nc: NatsConnection) {
    this.inbox = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, {
      callback: (err, msg) => {
        if (err === null) this.onAck(msg);
      },
    });
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Stores one copy on a channel; `msgId` makes a retry of the same copy a duplicate the stream drops. */
  append(key: string, body: Uint8Array, msgId: string, meta: WriteMeta, timeoutMs: number): Promise<Ack> {
    return this.write(storedSubject(key), body, writeHeaders(meta, msgId), timeoutMs);
  }

  /**
   * Stores `data` under any JetStream subject, without headers (a KV put is one: the
   * bucket's stream takes `$KV.<bucket>.<key>`), with the same acknowledgement path
   * and errors as `append`.
   */
  put(subject: string, data: Uint8Array, timeoutMs: number): Promise<Ack> {
    return this.write(subject, data, undefined, timeoutMs);
  }

  private write(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, timeoutMs: number): Promise<Ack> {
    const token = (this.next++).toString(36);
    return new Promise<Ack>((resolve, reject) => {
      this.pending.set(token, { batch: false, resolve, reject, deadline: Date.now() + timeoutMs });
      this.queue.push({ subject, data, headers, token, reply: true });
      this.schedule();
    });
  }

  /**
   * Stores every copy or none, as one atomic batch with a new batch id (a batch id
   * is never reused, so each call is its own attempt). The copies' message ids make
   * a retry of a stored batch a refusal ("duplicate") instead of a second copy.
   * Only the commit is answered, unless `answerEach`: then every message is, and a
   * message the stream refuses is named by its own error instead of "incomplete".
   */
  appendBatch(copies: readonly BatchCopy[], body: Uint8Array, timeoutMs: number, answerEach = false): Promise<BatchAck> {
    const batchId = nuid.next();
    const token = (this.next++).toString(36);
    const count = copies.length;
    return new Promise<BatchAck>((resolve, reject) => {
      this.pending.set(token, { batch: true, count, resolve, reject, deadline: Date.now() + timeoutMs });
      copies.forEach((c, i) => {
        const h = writeHeaders(c.meta, c.msgId, batchHeaders(batchId, i, count));
        this.queue.push({ subject: storedSubject(c.key), data: body, headers: h, token, reply: answerEach || i === count - 1 });
      });
      this.schedule();
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(new PublishUnavailableError('nats-unavailable', { cause: new Error('appender closed') }));
    this.pending.clear();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const queued = this.queue;
    this.queue = [];
    for (const q of queued) {
      // Nobody waits for it any more (timed out, or an earlier message of its batch could not be sent: the server drops the unfinished batch).
      if (!this.pending.has(q.token)) continue;
      try {
        const reply = q.reply ? this.inbox + q.token : undefined;
        this.nc.publish(q.subject, q.data, q.headers === undefined ? { reply } : { reply, headers: q.headers });
      } catch (err) {
        const p = this.pending.get(q.token);
        this.pending.delete(q.token);
        // Too large for the server is final; anything else (closed, reconnecting) may pass on a retry.
        const tooLarge = this.nc.info !== undefined && q.data.length > this.nc.info.max_payload - 4096;
        p?.reject(tooLarge ? new PayloadTooLargeError({ cause: err }) : new PublishUnavailableError('nats-unavailable', { cause: err }));
      }
    }
  }

  private onAck(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length);
    const p = this.pending.get(token);
    if (p === undefined) return; // answered after its deadline, or a batch already settled
    // A message of a batch taken in: the commit's answer follows.
    if (p.batch && msg.data.length === 0 && msg.headers === undefined) return;
    this.pending.delete(token);
    if (msg.data.length === 0) {
      // A status message: 503 "no responders" while the stream has no leader.
      p.reject(new PublishUnavailableError('nats-unavailable', { cause: new Error(`no responders (${msg.headers?.code ?? 'status'})`) }));
      return;
    }
    let r: PubAck;
    try {
      r = parsePubAck(msg.data);
    } catch (err) {
      p.reject(new PublishRejectedError('unreadable acknowledgement', { cause: err }));
      return;
    }
    const e = r.error;
    const detail = e ? `${e.err_code ?? 0}: ${e.description ?? 'refused'}` : '';
    const kind = e === undefined ? undefined : p.batch ? batchErrorKind(e) : e.code === 503 || e.err_code === DUPLICATE_IN_PROCESS ? 'temporary' : 'rejected';
    if (kind === 'temporary') {
      p.reject(new PublishUnavailableError('nats-unavailable', { cause: new Error(detail) }));
    } else if (kind === 'rejected') {
      p.reject(new PublishRejectedError(`stream refused the message (${detail})`));
    } else if (!p.batch) {
      p.resolve({ seq: r.seq ?? 0, duplicate: r.duplicate === true });
    } else if (kind !== undefined) {
      p.resolve({ stored: false, refusal: kind, detail });
    } else if (r.count !== p.count || r.seq === undefined) {
      // Not the answer of a batch: the copies may have been stored one by one, so this is no success either.
      p.reject(new PublishRejectedError(`batch of ${p.count} acknowledged with count ${r.count ?? 'none'}`));
    } else {
      p.resolve({ stored: true, lastSeq: r.seq, count: r.count });
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(token);
        p.reject(new PublishUnavailableError('timeout'));
      }
    }
  }
}
