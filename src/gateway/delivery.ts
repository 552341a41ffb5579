import type { StoredMessage } from '../nats/stored-message.ts';
import { formatMid } from '../wire/mid.ts';
import { encodeTextMessage } from '../wire/text-frame.ts';
import { encodeResponseEntry } from '../wire/protobuf.ts';

export type FrameFormat = 'text' | 'binary';

/**
 * One message on its way to connections. The hub builds one Delivery per message
 * per gateway and hands the same object to every connection; each wire encoding is
 * built at most once, on first use, and the same bytes go to every socket.
 */
export class Delivery {
  readonly mid: string;
  private textChunk: Buffer | undefined;
  private binaryChunk: Buffer | undefined;

  constructor(
    readonly msg: StoredMessage,
    epochSec: number,
    /** When the frame is built: text frames carry it as `tag`/`time`. */
    private readonly nowMs: number,
  ) {
    this.mid = formatMid(epochSec, msg.seq);
  }

  get seq(): number {
    return this.msg.seq;
  }

  /** Text: one `#!NGINXNMS!#…#!NGINXNME!#` block. Binary: one `Response` entry of a ResponseBatch. */
  chunk(format: FrameFormat): Buffer {
    if (format === 'text') {
      return (this.textChunk ??= encodeTextMessage(this.msg.seq, this.mid, this.msg.body, this.nowMs));
    }
    return (this.binaryChunk ??= encodeResponseEntry([this]));
  }
}

/**
 * Several deliveries as one frame or HTTP body. Text: the blocks concatenated.
 * Binary, live: one Response per message (what coalescing produces). Binary,
 * replay: one Response listing every message, as the reference answers a `mid`.
 */
export function batchFrame(list: readonly Delivery[], format: FrameFormat, grouping: 'live' | 'replay'): Buffer {
  if (list.length === 1) return list[0]!.chunk(format);
  if (format === 'binary' && grouping === 'replay') return encodeResponseEntry(list);
  return Buffer.concat(list.map((d) => d.chunk(format)));
}
