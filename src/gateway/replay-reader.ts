import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { decodeStored, H_PUB, isReplayable, type StoredMessage } from '../nats/stored-message.ts';
import { keyOfStoredSubject, storedSubject } from '../nats/subjects.ts';

export interface ReplayPage {
  /** Replayable messages newer than the start, in sequence order, one per publish. */
  readonly messages: StoredMessage[];
  /** True when more messages may follow; continue from `nextFrom`. */
  readonly truncated: boolean;
  /** Every message up to this sequence has been considered. */
  readonly nextFrom: number;
}

/**
 * Reads what a reconnecting client missed, straight from the stream by position:
 * per channel, a `last_by_subj` probe answers "anything newer?" (most channels:
 * no), and only then `next_by_subj` walks forward from the client's mid. No
 * consumer is created. Messages are merged by sequence, expired and live-only ones
 * are skipped, and a publish stored as several copies is returned once.
 */
export class ReplayReader {
  constructor(
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
  ) {}

  /**
   * Reads the channels in `readKeys` (those of `keys` that may have something
   * newer) with direct gets, and returns one page of what the connection missed.
   */
  async readPage(
    keys: readonly string[],
    fromSeq: number,
    limit: number,
    readKeys: readonly string[] = keys,
    nowMs = Date.now(),
  ): Promise<ReplayPage> {
    const perChannel = await Promise.all(readKeys.map((key) => this.readChannel(key, fromSeq, limit)));
    // Where a channel hit the limit, later sequences of other channels wait for the next page.
    let horizon = Number.MAX_SAFE_INTEGER;
    for (const c of perChannel) if (c.capped) horizon = Math.min(horizon, c.lastSeq);
    const merged: StoredMessage[] = [];
    for (const c of perChannel) for (const m of c.messages) if (m.seq <= horizon) merged.push(m);
    merged.sort((a, b) => a.seq - b.seq);
    const truncated = horizon !== Number.MAX_SAFE_INTEGER;
    return {
      messages: await this.finalize(merged, keys, fromSeq, nowMs),
      truncated,
      nextFrom: truncated ? horizon : (merged.at(-1)?.seq ?? fromSeq),
    };
  }

  /**
   * From messages newer than `fromSeq` in sequence order, keeps what a client should
   * get: replayable (not expired, not live-only), and each publish once, also when
   * the client already had it through another of its channels before its mid.
   */
  async finalize(merged: readonly StoredMessage[], keys: readonly string[], fromSeq: number, nowMs = Date.now()): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    const seenPubs = new Set<string>();
    for (const m of merged) {
      if (!isReplayable(m, nowMs)) continue;
      if (m.pubId !== undefined) {
        if (seenPubs.has(m.pubId)) continue;
        seenPubs.add(m.pubId);
        if (m.firstSeq !== undefined && m.firstSeq <= fromSeq && (await this.hadSibling(m, keys, fromSeq))) continue;
      }
      out.push(m);
    }
    return out;
  }

  /** Sequence of the newest message on any of the channels, 0 when none. */
  async newestSeq(keys: readonly string[]): Promise<number> {
    const last = await Promise.all(keys.map((key) => this.get({ last_by_subj: storedSubject(key) })));
    return last.reduce((max, m) => Math.max(max, m?.seq ?? 0), 0);
  }

  private async readChannel(
    key: string,
    fromSeq: number,
    limit: number,
  ): Promise<{ messages: StoredMessage[]; capped: boolean; lastSeq: number }> {
    const subject = storedSubject(key);
    const last = await this.get({ last_by_subj: subject });
    if (last === null || last.seq <= fromSeq) return { messages: [], capped: false, lastSeq: fromSeq };
    const messages: StoredMessage[] = [];
    let seq = fromSeq;
    while (seq < last.seq) {
      const m = await this.get({ seq: seq + 1, next_by_subj: subject });
      if (m === null) break;
      messages.push(toStored(m));
      seq = m.seq;
      if (messages.length >= limit && seq < last.seq) return { messages, capped: true, lastSeq: seq };
    }
    return { messages, capped: false, lastSeq: seq };
  }

  /**
   * A copy whose publish began at or before the client's mid: did the client already
   * get the publish through another of its channels? Looks for a sibling copy
   * between the first copy and the mid.
   */
  private async hadSibling(m: StoredMessage, keys: readonly string[], fromSeq: number): Promise<boolean> {
    for (const key of keys) {
      if (key === m.key) continue;
      const subject = storedSubject(key);
      let seq = m.firstSeq! - 1;
      for (;;) {
        const s = await this.get({ seq: seq + 1, next_by_subj: subject });
        if (s === null || s.seq > fromSeq) break;
        if (s.header.get(H_PUB) === m.pubId) return true;
        seq = s.seq;
      }
    }
    return false;
  }

  /** Direct gets made so far (replays, newest-mid lookups). */
  reads = 0;

  private get(query: { last_by_subj: string } | { seq: number; next_by_subj: string }): Promise<StoredMsg | null> {
    this.reads++;
    return this.jsm.direct.getMessage(this.stream, query as never);
  }
}

function toStored(m: StoredMsg): StoredMessage {
  return decodeStored(m.header, keyOfStoredSubject(m.subject), m.data, m.seq, Date.parse(m.timestamp), undefined);
}
