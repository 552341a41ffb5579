import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { decodeStored, type StoredMessage } from '../nats/stored-message.ts';
import { keyOfStoredSubject, STORED_PREFIX, storedSubject } from '../nats/subjects.ts';

/** Messages read per fetch while scanning the stream. */
const SCAN_BATCH = 5_000;

/**
 * Reads what live delivery missed, for the hub:
 * - `channelRange`: one channel's messages between two sequences (a gap seen on a
 *   live message: its `Nats-Last-Sequence` is ahead of the last one delivered).
 * - `scan`: every message of the stream after a sequence, in order, up to its end
 *   when the scan starts (after a reconnect or a stream leader change, when any
 *   channel may have missed messages). One short-lived ordered consumer, however
 *   many channels the gateway holds.
 */
export class StreamScanner {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  async channelRange(key: string, afterSeq: number, beforeSeq: number): Promise<StoredMessage[]> {
    const subject = storedSubject(key);
    const out: StoredMessage[] = [];
    let seq = afterSeq;
    for (;;) {
      const m = await this.jsm.direct.getMessage(this.stream, { seq: seq + 1, next_by_subj: subject } as never);
      if (m === null || m.seq >= beforeSeq) return out;
      out.push(decodeStored(m.header, key, m.data, m.seq, Date.parse(m.timestamp), undefined));
      seq = m.seq;
    }
  }

  /**
   * Visits every message after `afterSeq` whose channel key `wants` accepts (only those
   * are decoded); returns the last sequence read (or `afterSeq`).
   */
  async scan(afterSeq: number, wants: (key: string) => boolean, visit: (m: StoredMessage) => void): Promise<number> {
    const info = await this.jsm.streams.info(this.stream);
    const end = info.state.last_seq;
    if (end <= afterSeq) return afterSeq;
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: `${STORED_PREFIX}>`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(afterSeq + 1, info.state.first_seq),
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
}
