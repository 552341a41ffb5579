import type { StoredMessage } from '../nats/stored-message.ts';
import type { ChannelRead } from './replay-reader.ts';

/** What a kept message costs beyond its body (the record, its strings, the map). */
const MESSAGE_OVERHEAD_BYTES = 200;

interface History {
  /** Every replayable message of the channel after this sequence is in `messages`. */
  from: number;
  /** Ascending by sequence. */
  messages: StoredMessage[];
  bytes: number;
}

/**
 * The newest replayable messages of the channels the hub holds, kept as live delivery
 * hands them out, so a client that comes back while its channels are still held (a
 * dropped connection, a reconnect wave after a network blip or a proxy reload, a
 * long poll's next request) is replayed from memory instead of the stream.
 *
 * A channel's history is complete after `from`: the hub delivers each channel's
 * messages in stream order without gaps once its subscription is confirmed, and
 * records every one it delivers. Bounded twice: `maxPerChannel` messages per channel
 * (the oldest goes, and `from` moves up to it), and `maxBytes` for all of them (the
 * channel written to least recently loses its whole history and starts again with its
 * next message). A replay the history does not cover reads the stream as before.
 */
export class RecentMessages {
  /** In order of the last write: the first is the one to let go. */
  private readonly channels = new Map<string, History>();
  private totalBytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly maxPerChannel: number,
  ) {}

  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * A message the hub delivered on `key`; `coveredAfter`: every message of the channel
   * after it up to this one was delivered too (where a new history starts).
   */
  record(key: string, msg: StoredMessage, coveredAfter: number): void {
    if (this.maxBytes === 0 || this.maxPerChannel === 0) return;
    let h = this.channels.get(key);
    if (h === undefined) {
      h = { from: coveredAfter, messages: [], bytes: 0 };
    } else {
      // Moved to the end: written most recently.
      this.channels.delete(key);
    }
    this.channels.set(key, h);
    if (msg.expirySec === 0) return; // live only: never replayed, so never needed here
    // The body is a view into the NATS client's read buffer: keep a copy, not the buffer.
    const kept: StoredMessage = { ...msg, body: msg.body.slice() };
    const cost = kept.body.length + MESSAGE_OVERHEAD_BYTES;
    h.messages.push(kept);
    h.bytes += cost;
    this.totalBytes += cost;
    if (h.messages.length > this.maxPerChannel) this.dropOldest(h);
    while (this.totalBytes > this.maxBytes) this.evictLeastRecent();
  }

  /**
   * The channel's messages after `fromSeq`, at most `limit`, when the history holds all
   * of them; `upTo`: the channel's newest delivered sequence (what was considered).
   * Undefined when the history does not reach back to `fromSeq`.
   */
  after(key: string, fromSeq: number, limit: number, upTo: number): ChannelRead | undefined {
    const h = this.channels.get(key);
    if (h === undefined || h.from > fromSeq) return undefined;
    const all = h.messages;
    let i = all.length;
    while (i > 0 && all[i - 1]!.seq > fromSeq) i--;
    const messages = all.slice(i, i + limit);
    const capped = all.length - i > limit;
    return { key, messages, capped, lastSeq: capped ? messages[messages.length - 1]!.seq : Math.max(upTo, fromSeq) };
  }

  /** The channel is no longer held. */
  forget(key: string): void {
    const h = this.channels.get(key);
    if (h === undefined) return;
    this.totalBytes -= h.bytes;
    this.channels.delete(key);
  }

  /** Sequences start again (a re-created stream): nothing kept means anything. */
  clear(): void {
    this.channels.clear();
    this.totalBytes = 0;
  }

  private dropOldest(h: History): void {
    const old = h.messages.shift()!;
    const cost = old.body.length + MESSAGE_OVERHEAD_BYTES;
    h.bytes -= cost;
    this.totalBytes -= cost;
    h.from = old.seq;
  }

  private evictLeastRecent(): void {
    const first = this.channels.entries().next();
    if (first.done === true) {
      this.totalBytes = 0;
      return;
    }
    // Forgotten whole: its next message starts a new history from the hub's point.
    this.forget(first.value[0]);
  }
}
