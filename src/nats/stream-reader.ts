import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { decodeStored, type StoredMessage } from './stored-message.ts';
import { keyOfStoredSubject, STORED_PREFIX, storedSubject } from './subjects.ts';

/** Where the stream stands: its first and last sequence, and when it was created. */
export interface StreamPosition {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Creation time (ms since the epoch): the epoch of message ids. */
  readonly createdMs: number;
}

/** Messages read per fetch while scanning the stream. */
const SCAN_BATCH = 5_000;

/**
 * Every read of the message stream, in domain terms: positions, one channel's
 * messages by sequence (direct gets), and scans of the whole stream (one short-lived
 * ordered consumer). Callers see StoredMessages and sequences, never JetStream shapes.
 */
export class StreamReader {
  /** Direct gets made so far (replays, gap fills, newest-mid lookups). */
  reads = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  async position(): Promise<StreamPosition> {
    const info = await this.jsm.streams.info(this.stream);
    return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, createdMs: Date.parse(info.created) };
  }

  /** The stream's last sequence now. */
  async end(): Promise<number> {
    return (await this.position()).lastSeq;
  }

  /** The newest message of a channel, or null when it has none. */
  async last(key: string): Promise<StoredMessage | null> {
    const m = await this.get({ last_by_subj: storedSubject(key) });
    return m === null ? null : toStored(m);
  }

  /** A channel's messages after `afterSeq`, oldest first, one direct get each; stop iterating to stop reading. */
  async *after(key: string, afterSeq: number): AsyncGenerator<StoredMessage> {
    const subject = storedSubject(key);
    for (let seq = afterSeq; ; ) {
      const m = await this.get({ seq: seq + 1, next_by_subj: subject });
      if (m === null) return;
      seq = m.seq;
      yield toStored(m);
    }
  }

  /**
   * Visits every message after `afterSeq` whose channel key `wants` accepts (only those
   * are decoded), up to the stream's end when the scan starts; returns the last
   * sequence read (or `afterSeq`).
   */
  async scan(afterSeq: number, wants: (key: string) => boolean, visit: (m: StoredMessage) => void): Promise<number> {
    const { firstSeq, lastSeq: end } = await this.position();
    if (end <= afterSeq) return afterSeq;
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: `${STORED_PREFIX}>`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(afterSeq + 1, firstSeq),
    });
    let last = afterSeq;
    try {
      while (last < end) {
        const batch = await consumer.fetch({ max_messages: SCAN_BATCH, expires: 2_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          last = m.seq;
          const key = keyOfStoredSubject(m.subject);
          if (wants(key)) visit(decodeStored(m.headers ?? natsHeaders(), key, m.data, m.seq, Math.floor(m.info.timestampNanos / 1e6), undefined));
          if (m.seq >= end) break;
        }
        if (got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return last;
  }

  private get(query: { last_by_subj: string } | { seq: number; next_by_subj: string }): Promise<StoredMsg | null> {
    this.reads++;
    // The client's query type is a union its overloads do not accept as such.
    return this.jsm.direct.getMessage(this.stream, query as Parameters<JetStreamManager['direct']['getMessage']>[1]);
  }
}

function toStored(m: StoredMsg): StoredMessage {
  return decodeStored(m.header, keyOfStoredSubject(m.subject), m.data, m.seq, Date.parse(m.timestamp), undefined);
}
