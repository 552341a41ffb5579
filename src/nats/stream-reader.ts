import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, JetStreamError, type Consumer, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { StreamMissingError, StreamReadError } from '../errors/app-error.ts';
import { decodeStored, type StoredMessage } from './stored-message.ts';
import { keyOfStoredSubject, STORED_PREFIX, storedSubject } from './subjects.ts';

/** Where the stream stands: its first and last sequence, and when it was created. */
export interface StreamPosition {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Creation time (ms since the epoch): the epoch of message ids. */
  readonly createdMs: number;
  /** Server name of the stream's leader, in a cluster. */
  readonly leader: string | undefined;
  /** When the oldest message still held was stored (ms since the epoch); undefined when empty. */
  readonly firstStoredMs: number | undefined;
  readonly messages: number;
  readonly bytes: number;
  /** The stream's byte limit, -1 for none. */
  readonly maxBytes: number;
}

export interface StreamReaderOptions {
  /** Replicas of the stream: with more than one, reads go to the leader. */
  replicas: number;
  /** The server answers batched direct gets (nats-server 2.11+): a walk reads many messages per request. */
  batchDirectGet?: boolean;
}

/** Messages asked for per batched direct get. */
const WALK_BATCH = 256;

/** Messages read per fetch while scanning the stream. */
const SCAN_BATCH = 5_000;
/**
 * A consumer that delivers nothing for this long while messages remain before the
 * target (placed on a replica that is still catching up, typically): the rest is read
 * by sequence from the stream (the leader in a cluster), or the scan fails and is retried.
 */
const SCAN_STALL_MS = 3_000;
/** The most messages finished by sequence after a stall; beyond it the scan is retried. */
const STALL_FINISH_MAX = 5_000;

/**
 * Every read of the message stream, in domain terms: positions, one channel's
 * messages by sequence (direct gets; from the leader in a cluster), and scans of the
 * whole stream (one short-lived ordered consumer). Callers see StoredMessages and
 * sequences, never JetStream shapes.
 */
export class StreamReader {
  /** Direct gets made so far (replays, gap fills, newest-mid lookups). */
  reads = 0;

  /**
   * `scanClients`: what the scans' consumers are created with, `js` (the request
   * timeout) once `probe` (a short timeout) found the metadata leader answering; see
   * createScanConsumer.
   */
  constructor(
    private readonly scanClients: { readonly js: JetStreamClient; readonly probe: JetStreamManager },
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly opts: StreamReaderOptions = { replicas: 1 },
  ) {}

  /** Rejects with StreamMissingError when the stream does not exist. */
  async position(): Promise<StreamPosition> {
    const info = await this.jsm.streams.info(this.stream).catch((err: unknown) => {
      throw this.readError(err);
    });
    const s = info.state;
    return {
      firstSeq: s.first_seq,
      lastSeq: s.last_seq,
      createdMs: Date.parse(info.created),
      leader: info.cluster?.leader,
      firstStoredMs: s.messages > 0 ? Date.parse(s.first_ts) : undefined,
      messages: s.messages,
      bytes: s.bytes,
      maxBytes: info.config.max_bytes,
    };
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

  /** The message stored at `seq`, or null when there is none (any more). */
  async at(seq: number): Promise<StoredMessage | null> {
    const m = await this.get({ seq });
    return m === null ? null : toStored(m);
  }

  /**
   * A channel's messages after `afterSeq`, oldest first: one direct get each, or
   * batches of them where the server can (one server only: in a cluster every read
   * goes to the leader); stop iterating to stop reading.
   */
  async *after(key: string, afterSeq: number): AsyncGenerator<StoredMessage> {
    const subject = storedSubject(key);
    if (this.opts.batchDirectGet === true && this.opts.replicas === 1) {
      yield* this.afterInBatches(subject, afterSeq);
      return;
    }
    for (let seq = afterSeq; ; ) {
      const m = await this.get({ seq: seq + 1, next_by_subj: subject });
      if (m === null) return;
      seq = m.seq;
      yield toStored(m);
    }
  }

  /**
   * Visits every message after `afterSeq` whose channel key `wants` accepts (only those
   * are decoded), in order, up to the stream's end when the scan starts or, when
   * `until` says more, up to that (re-read as the scan goes, so a scan can chase a
   * moving point); never past `upTo`. An empty fetch is not the end: the scan goes on
   * until it reaches its target or the stream no longer holds anything up to it (aged
   * out, purged). Returns the sequence up to which everything was considered.
   */
  async scan(
    afterSeq: number,
    wants: (key: string) => boolean,
    visit: (m: StoredMessage) => void,
    until: () => number = () => 0,
    upTo = Number.MAX_SAFE_INTEGER,
  ): Promise<number> {
    const start = await this.position();
    const targetNow = (t: number): number => Math.min(upTo, Math.max(t, until()));
    let target = targetNow(start.lastSeq);
    if (target <= afterSeq) return afterSeq;
    const consumer = await this.createScanConsumer(Math.max(afterSeq + 1, start.firstSeq));
    let last = afterSeq;
    let progressAt = Date.now();
    try {
      while (last < target) {
        // A bounded scan asks for no more than its stretch; an open one keeps a large batch
        // flowing, so it catches up with a target that moves.
        const wanted = upTo === Number.MAX_SAFE_INTEGER ? SCAN_BATCH : Math.max(1, Math.min(SCAN_BATCH, target - last));
        const batch = await consumer.fetch({ max_messages: wanted, expires: 2_000 });
        let got = 0;
        for await (const m of batch) {
          if (m.seq > upTo) {
            // Past the bound (deleted sequences before it): everything up to it was seen.
            last = upTo;
            break;
          }
          got++;
          last = m.seq;
          const key = keyOfStoredSubject(m.subject);
          if (wants(key)) visit(decodeStored(m.headers ?? natsHeaders(), key, m.data, m.seq, Math.floor(m.info.timestampNanos / 1e6), undefined));
          if (last >= target) {
            target = targetNow(target);
            if (last >= target) break;
          }
        }
        target = targetNow(target);
        if (got > 0) {
          progressAt = Date.now();
          continue;
        }
        const now = await this.position();
        // Nothing left up to the target: it aged out or was removed meanwhile.
        if (now.firstSeq > target || now.lastSeq <= last) return Math.max(last, Math.min(target, now.lastSeq));
        if (Date.now() - progressAt > SCAN_STALL_MS) {
          if (target - last > STALL_FINISH_MAX) throw new StreamReadError(`scan made no progress at ${last} of ${target}`);
          return await this.finishBySequence(last, target, wants, visit);
        }
      }
    } catch (err) {
      throw this.readError(err);
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return last;
  }

  /**
   * The scan's ordered consumer, created through the cluster's metadata leader. A
   * cluster that lost the node leading both the stream and the metadata elects the
   * stream's new leader first and the metadata's a moment later; a creation asked in
   * between is never answered, and the catch-up waiting on it would hold live delivery
   * for the whole request timeout. So the metadata leader is asked first, briefly
   * (account info): without an answer the scan fails now and is tried again; with one,
   * the creation gets the request timeout (an old server computes what a consumer far
   * back in a large stream has pending: 0.6 s per million messages on 2.9).
   */
  private async createScanConsumer(startSeq: number): Promise<Consumer> {
    const metadataAnswers = await this.scanClients.probe.getAccountInfo().then(
      () => true,
      () => false,
    );
    if (!metadataAnswers) throw new StreamReadError('no JetStream metadata leader answers: scan not started');
    const config = { filter_subjects: `${STORED_PREFIX}>`, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq };
    return await this.scanClients.js.consumers.get(this.stream, config).catch((err: unknown) => {
      throw this.readError(err);
    });
  }

  /** The scan's rest, one message at a time by sequence (gaps in the sequence are deleted messages). */
  private async finishBySequence(last: number, target: number, wants: (key: string) => boolean, visit: (m: StoredMessage) => void): Promise<number> {
    for (let seq = last + 1; seq <= target; seq++) {
      const m = await this.get({ seq });
      if (m === null) continue;
      const stored = toStored(m);
      if (wants(stored.key)) visit(stored);
    }
    return target;
  }

  private async *afterInBatches(subject: string, afterSeq: number): AsyncGenerator<StoredMessage> {
    for (let seq = afterSeq; ; ) {
      this.reads++;
      let got = 0;
      try {
        const batch = await this.jsm.direct.getBatch(this.stream, { seq: seq + 1, next_by_subj: subject, batch: WALK_BATCH });
        for await (const m of batch) {
          got++;
          seq = m.seq;
          yield toStored(m);
        }
      } catch (err) {
        // A batch that finds nothing is answered 404 where a single get answers null: the
        // channel has nothing more (a channel nobody publishes to, or a walk that ended
        // with a full batch), not a failed read.
        if (err instanceof JetStreamError && (err as { code?: unknown }).code === 404) return;
        throw this.readError(err);
      }
      if (got < WALK_BATCH) return;
    }
  }

  /**
   * One message by position. On one server a direct get (cheapest). In a cluster the
   * stream leader answers (STREAM.MSG.GET): a direct get is answered by whichever
   * replica is nearest, and a follower that fell behind answers from what it has, which
   * would hide acknowledged messages from the reads that decide what a client missed.
   */
  private get(query: { last_by_subj: string } | { seq: number; next_by_subj?: string }): Promise<StoredMsg | null> {
    this.reads++;
    // The client's query types are unions its signatures do not accept as such;
    // the server's MSG.GET takes next_by_subj like a direct get does.
    const read =
      this.opts.replicas > 1
        ? this.jsm.streams.getMessage(this.stream, query as Parameters<JetStreamManager['streams']['getMessage']>[1])
        : this.jsm.direct.getMessage(this.stream, query as Parameters<JetStreamManager['direct']['getMessage']>[1]);
    return read.catch((err: unknown) => {
      throw this.readError(err);
    });
  }

  /**
   * What a failed read means for the caller: the stream is gone, or a read that may
   * succeed later (timeout, no leader, "JetStream system temporarily unavailable",
   * NATS away). Never a raw client error: a publish would answer it 500 and its
   * caller would give up on a message that may be stored.
   */
  private readError(err: unknown): StreamReadError {
    if (err instanceof StreamReadError) return err;
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return new StreamMissingError(this.stream, { cause: err });
    return new StreamReadError(err instanceof Error ? err.message : String(err), { cause: err });
  }
}

function toStored(m: StoredMsg): StoredMessage {
  return decodeStored(m.header, keyOfStoredSubject(m.subject), m.data, m.seq, Date.parse(m.timestamp), undefined);
}
