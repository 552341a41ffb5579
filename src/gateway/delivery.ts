import type { StoredMessage } from '../nats/stored-message.ts';
import { formatMid } from '../wire/mid.ts';
import { encodeIncomingMessage, joinRequests } from '../wire/json-rpc.ts';
import { encodeTextMessage } from '../wire/text-frame.ts';
import { encodeResponseEntry } from '../wire/protobuf.ts';

/** text: protocol ≤ 3; binary: 4 (`binaryMode=true`); jsonrpc: 5 (`jsonRpc=true`). */
export type FrameFormat = 'text' | 'binary' | 'jsonrpc';

/** What a JSON-RPC connection gets for a message it cannot be sent (a body that is no JSON object). */
const NOTHING = Buffer.alloc(0);

/**
 * One message on its way to connections. The hub builds one Delivery per message
 * per gateway and hands the same object to every connection; each wire encoding is
 * built at most once, on first use, and the same bytes go to every socket.
 */
export class Delivery {
  readonly mid: string;
  private textChunk: Buffer | undefined;
  private binaryChunk: Buffer | undefined;
  private rpcChunk: Buffer | undefined;
  /** The first run of deliveries starting here that was joined into one frame, per format (see joinedFrame). */
  private joinedRuns: Partial<Record<FrameFormat, JoinedRun>> | undefined;

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

  /**
   * Text: one `#!NGINXNMS!#…#!NGINXNME!#` block. Binary: one `Response` entry of a
   * ResponseBatch. JSON-RPC: one `incoming.message` request, or nothing (empty) for a
   * body the client could not read.
   */
  chunk(format: FrameFormat): Buffer {
    if (format === 'text') {
      return (this.textChunk ??= encodeTextMessage(this.msg.seq, this.mid, this.msg.body, this.nowMs));
    }
    if (format === 'jsonrpc') {
      return (this.rpcChunk ??= encodeIncomingMessage(this.mid, this.msg.body, this.msg.senderId) ?? NOTHING);
    }
    return (this.binaryChunk ??= encodeResponseEntry([this]));
  }

  /** @internal joinedFrame's memo, kept on the run's first delivery. */
  joined(format: FrameFormat): JoinedRun | undefined {
    return this.joinedRuns?.[format];
  }

  /** @internal */
  setJoined(format: FrameFormat, run: JoinedRun): void {
    (this.joinedRuns ??= {})[format] = run;
  }
}

interface JoinedRun {
  readonly list: readonly Delivery[];
  readonly frame: Buffer;
}

/**
 * Live deliveries gathered for one connection, as one frame (text: the blocks
 * concatenated; binary: one ResponseBatch with a Response per message). Connections
 * of a channel that gathered the same run of messages (a burst in one event-loop
 * turn, typically) share one buffer: the first run joined from a delivery is kept
 * on it and handed to every later caller with exactly the same list.
 */
export function joinedFrame(list: readonly Delivery[], format: FrameFormat): Buffer {
  const first = list[0]!;
  if (list.length === 1) return first.chunk(format);
  const memo = first.joined(format);
  if (memo !== undefined && sameRun(memo.list, list)) return memo.frame;
  const frame = concatChunks(list, format);
  // The first run stays: connections whose runs differ (other channels mixed in) build their own.
  if (memo === undefined) first.setJoined(format, { list: list.slice(), frame });
  return frame;
}

function sameRun(a: readonly Delivery[], b: readonly Delivery[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Several deliveries as one frame or HTTP body. Text: the blocks concatenated.
 * Binary, live: one Response per message (what coalescing produces). Binary,
 * replay: one Response listing every message, as the reference answers a `mid`.
 */
export function batchFrame(list: readonly Delivery[], format: FrameFormat, grouping: 'live' | 'replay'): Buffer {
  if (list.length === 1) return list[0]!.chunk(format);
  if (format === 'binary' && grouping === 'replay') return encodeResponseEntry(list);
  return concatChunks(list, format);
}

/** Text and binary: the chunks back to back. JSON-RPC: a batch (array) of the requests there are. */
function concatChunks(list: readonly Delivery[], format: FrameFormat): Buffer {
  if (format !== 'jsonrpc') return Buffer.concat(list.map((d) => d.chunk(format)));
  const requests = list.map((d) => d.chunk(format)).filter((b) => b.length > 0);
  return requests.length === 0 ? NOTHING : joinRequests(requests);
}
