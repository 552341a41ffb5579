import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { PayloadTooLargeError, PublishRejectedError, PublishUnavailableError } from '../errors/app-error.ts';
import { encodeHeaders, type WriteMeta } from './stored-message.ts';
import { storedSubject } from './subjects.ts';

/** What JetStream answered for one stored message. */
export interface Ack {
  readonly seq: number;
  readonly duplicate: boolean;
}

interface Pending {
  resolve(ack: Ack): void;
  reject(err: Error): void;
  deadline: number;
}

interface Queued {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  token: string;
}

const SWEEP_MS = 50;
/**
 * nats-server 2.11+: an earlier attempt with the same message id is still being
 * stored (a retry after a slow acknowledgement). A later retry gets "duplicate".
 */
const DUPLICATE_IN_PROCESS = 10158;

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
 * PublishRejectedError (permanent: the stream refused the message).
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
    const h = encodeHeaders(meta) ?? natsHeaders();
    h.set('Nats-Msg-Id', msgId);
    const subject = storedSubject(key);
    const data = body;
    const token = (this.next++).toString(36);
    return new Promise<Ack>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + timeoutMs });
      this.queue.push({ subject, data, headers: h, token });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sub.unsubscribe();
    for (const p of this.pending.values()) p.reject(new PublishUnavailableError('nats-unavailable', { cause: new Error('appender closed') }));
    this.pending.clear();
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const q of batch) {
      try {
        this.nc.publish(q.subject, q.data, { reply: this.inbox + q.token, headers: q.headers });
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
    if (p === undefined) return; // answered after its deadline
    this.pending.delete(token);
    if (msg.data.length === 0) {
      // A status message: 503 "no responders" while the stream has no leader.
      p.reject(new PublishUnavailableError('nats-unavailable', { cause: new Error(`no responders (${msg.headers?.code ?? 'status'})`) }));
      return;
    }
    try {
      const r = JSON.parse(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength).toString('utf8')) as {
        seq?: number;
        duplicate?: boolean;
        error?: { code?: number; err_code?: number; description?: string };
      };
      if (r.error) {
        const err =
          r.error.code === 503 || r.error.err_code === DUPLICATE_IN_PROCESS
            ? new PublishUnavailableError('nats-unavailable', { cause: new Error(r.error.description ?? 'unavailable') })
            : new PublishRejectedError(`stream refused the message (${r.error.err_code ?? 0}: ${r.error.description ?? 'refused'})`);
        p.reject(err);
        return;
      }
      p.resolve({ seq: r.seq ?? 0, duplicate: r.duplicate === true });
    } catch (err) {
      p.reject(new PublishRejectedError('unreadable acknowledgement', { cause: err }));
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
