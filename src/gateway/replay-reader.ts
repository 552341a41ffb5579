import { isReplayable, type StoredMessage } from '../nats/stored-message.ts';
import type { StreamReader } from '../nats/stream-reader.ts';

export interface ReplayPage {
  /** Replayable messages newer than the start, in sequence order, one per publish. */
  readonly messages: StoredMessage[];
  /** True when more messages may follow; continue from `nextFrom`. */
  readonly truncated: boolean;
  /** Every message of the channels up to this sequence has been considered. */
  readonly nextFrom: number;
  /**
   * Each channel read, and the sequence up to which the page holds all of its messages
   * (its own read point, which can be short of `nextFrom`: the channels are read one
   * after the other while messages are stored).
   */
  readonly readTo: ReadonlyArray<readonly [key: string, seq: number]>;
}

export interface PageLimits {
  /** Messages read per channel and per page. */
  readonly messages: number;
  /** Bytes of bodies per page (one frame): well under the connection's outbox. */
  readonly bytes: number;
}

/** One channel's messages after a point, at most a page of them. */
export interface ChannelRead {
  readonly key: string;
  readonly messages: StoredMessage[];
  /** More messages follow `lastSeq` on the channel. */
  readonly capped: boolean;
  /** The channel was read up to this sequence. */
  readonly lastSeq: number;
}

/** What a message costs in a frame beyond its body (envelope, mid, time). */
const FRAME_OVERHEAD_BYTES = 160;

/**
 * Reads what a reconnecting client missed, straight from the stream by position:
 * per channel, the newest message answers "anything newer?" (most channels: no), and
 * only then the channel is walked forward from the client's mid. No consumer is
 * created. Messages are merged by sequence, expired and live-only ones are skipped,
 * and a publish stored as several copies is returned once.
 */
export class ReplayReader {
  constructor(private readonly stream: StreamReader) {}

  /** Direct gets made so far. */
  get reads(): number {
    return this.stream.reads;
  }

  /**
   * Reads the channels in `readKeys` (those of `keys` that may have something
   * newer) and returns one page of what the connection missed.
   */
  async readPage(
    keys: readonly string[],
    fromSeq: number,
    limits: PageLimits,
    readKeys: readonly string[] = keys,
    nowMs = Date.now(),
  ): Promise<ReplayPage> {
    const perChannel = await Promise.all(readKeys.map((key) => this.readChannel(key, fromSeq, limits.messages)));
    const considered = perChannel.reduce((max, c) => Math.max(max, c.lastSeq), fromSeq);
    const page = mergePage(perChannel, limits.bytes, considered);
    return { ...page, messages: await this.finalize(page.messages, keys, fromSeq, nowMs) };
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
    const last = await Promise.all(keys.map((key) => this.stream.last(key)));
    return last.reduce((max, m) => Math.max(max, m?.seq ?? 0), 0);
  }

  private async readChannel(key: string, fromSeq: number, limit: number): Promise<ChannelRead> {
    const last = await this.stream.last(key);
    if (last === null || last.seq <= fromSeq) return { key, messages: [], capped: false, lastSeq: Math.max(fromSeq, last?.seq ?? 0) };
    const messages: StoredMessage[] = [];
    let seq = fromSeq;
    for await (const m of this.stream.after(key, fromSeq)) {
      messages.push(m);
      seq = m.seq;
      if (seq >= last.seq) break;
      if (messages.length >= limit) return { key, messages, capped: true, lastSeq: seq };
    }
    return { key, messages, capped: false, lastSeq: seq };
  }

  /**
   * A copy whose publish began at or before the client's mid: did the client already
   * get the publish through another of its channels? Looks for a sibling copy
   * between the first copy and the mid.
   */
  private async hadSibling(m: StoredMessage, keys: readonly string[], fromSeq: number): Promise<boolean> {
    // The first copy was on one of the client's channels and before its mid: it had it.
    if (m.firstKey !== undefined && keys.includes(m.firstKey)) return true;
    for (const key of keys) {
      if (key === m.key) continue;
      for await (const s of this.stream.after(key, m.firstSeq! - 1)) {
        if (s.seq > fromSeq) break;
        if (s.pubId === m.pubId) return true;
      }
    }
    return false;
  }
}

/**
 * One page from what each channel gave: merged by sequence; where a channel hit its
 * limit, later sequences of the other channels wait for the next page, and the page
 * ends where its bodies reach `maxBytes`. `considered`: every channel was read up to
 * there when none was cut. The messages are not finalized yet.
 */
export function mergePage(perChannel: readonly ChannelRead[], maxBytes: number, considered: number): ReplayPage {
  let horizon = Number.MAX_SAFE_INTEGER;
  for (const c of perChannel) if (c.capped) horizon = Math.min(horizon, c.lastSeq);
  const merged: StoredMessage[] = [];
  for (const c of perChannel) for (const m of c.messages) if (m.seq <= horizon) merged.push(m);
  if (perChannel.length > 1) merged.sort((a, b) => a.seq - b.seq);
  const cut = cutAtBytes(merged, maxBytes);
  if (cut < merged.length) horizon = merged[cut - 1]!.seq;
  const truncated = horizon !== Number.MAX_SAFE_INTEGER;
  const nextFrom = truncated ? horizon : considered;
  return { messages: merged.slice(0, cut), truncated, nextFrom, readTo: perChannel.map((c) => [c.key, Math.min(c.lastSeq, nextFrom)] as const) };
}

/** How many of the messages fit in `maxBytes` (at least one, so a replay always moves on). */
export function cutAtBytes(messages: readonly StoredMessage[], maxBytes: number): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    bytes += messages[i]!.body.length + FRAME_OVERHEAD_BYTES;
    if (bytes > maxBytes && i > 0) return i;
  }
  return messages.length;
}
