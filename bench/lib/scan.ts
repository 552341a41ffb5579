/**
 * Cheap frame scanning. Publishers embed `"seq":<n>,"c":<client>,"t":<ms>` at a
 * fixed place in every body; receivers find each message by that `"seq":` key (text
 * mode: exactly one per `#!NGINXNMS!#` block) or by walking the protobuf wire format
 * three levels deep (binary mode), and read only those three numbers. No JSON.parse, no protobuf decoding library, no string
 * conversion of frames.
 */

export interface MessageSink {
  /** seq: publisher's sequence (-1 for warm-up messages); c: addressed client (-1 for broadcast); t: publish time (ms). */
  onMsg(seq: number, c: number, t: number): void;
}

const MID = Buffer.from('"mid":"');

let pos = 0;

function readInt(buf: Buffer, p: number): number {
  let neg = false;
  if (buf[p] === 45) {
    neg = true;
    p++;
  }
  let v = 0;
  for (;;) {
    const ch = buf[p];
    if (ch === undefined || ch < 48 || ch > 57) break;
    v = v * 10 + (ch - 48);
    p++;
  }
  pos = p;
  return neg ? -v : v;
}

function readFloat(buf: Buffer, p: number): number {
  let v = readInt(buf, p);
  p = pos;
  if (buf[p] === 46) {
    p++;
    let scale = 1;
    let frac = 0;
    for (;;) {
      const ch = buf[p];
      if (ch === undefined || ch < 48 || ch > 57) break;
      frac = frac * 10 + (ch - 48);
      scale *= 10;
      p++;
    }
    v += frac / scale;
  }
  pos = p;
  return v;
}

/** Reads `"seq":N,"c":N,"t":F` starting at the index of `"seq":`. */
function readFields(buf: Buffer, at: number, sink: MessageSink): void {
  const seq = readInt(buf, at + 6);
  // ,"c":
  const c = readInt(buf, pos + 5);
  // ,"t":
  const t = readFloat(buf, pos + 5);
  sink.onMsg(seq, c, t);
}

/** The mid of the last message seen by the last scan that asked for it. */
export let lastMid: string | undefined;

/** Horspool shift table for `"seq":` (34 115 101 113 34 58): bytes not in it skip the whole 6. */
const SHIFT = new Uint8Array(256).fill(6);
SHIFT[34] = 1; // '"' (last occurrence before the end: index 4)
SHIFT[113] = 2; // 'q'
SHIFT[101] = 3; // 'e'
SHIFT[115] = 4; // 's'

/**
 * Index of the next `"seq":` at or after `from` (before `end`), or -1. A JavaScript
 * Horspool search: for the short distances between two messages it is several times
 * cheaper than a native Buffer#indexOf call.
 */
export function findSeq(buf: Buffer, from: number, end = buf.length): number {
  let j = from + 5;
  while (j < end) {
    const b = buf[j]!;
    if (b === 58 && buf[j - 1] === 34 && buf[j - 2] === 113 && buf[j - 3] === 101 && buf[j - 4] === 115 && buf[j - 5] === 34) return j - 5;
    j += SHIFT[b]!;
  }
  return -1;
}

/** Every body starts `{"module_id":"bench","command":"m","params":{` (45 bytes) and ends after `,"pad":"…"}}`. */
const MIN_GAP = 48;

/**
 * Text mode: every message of a WebSocket frame or long-poll body. One
 * search per message: the `"seq":` key of our own bodies (one per `#!NGINXNMS!#`
 * block) both counts the message and locates its numbers; the search for the next
 * one starts past the shortest possible rest of a body. Returns the
 * number of messages.
 */
export function scanText(buf: Buffer, sink: MessageSink, wantMid = false): number {
  let n = 0;
  let s = findSeq(buf, 0);
  while (s !== -1) {
    readFields(buf, s, sink);
    n++;
    s = findSeq(buf, pos + MIN_GAP);
  }
  if (wantMid) {
    const m = n > 0 ? buf.lastIndexOf(MID) : -1;
    lastMid = m === -1 ? undefined : buf.toString('latin1', m + 7, m + 33);
  }
  return n;
}

function varint(buf: Buffer, p: number): number {
  const b0 = buf[p]!;
  if (b0 < 0x80) {
    pos = p + 1;
    return b0;
  }
  let v = b0 & 0x7f;
  let mul = 128;
  p++;
  for (;;) {
    const b = buf[p++];
    if (b === undefined) throw new Error('truncated varint');
    v += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  pos = p;
  return v;
}

/** Skips a field of wire type `wt` at `p`; returns the position after it. */
function skip(buf: Buffer, p: number, wt: number): number {
  switch (wt) {
    case 0:
      varint(buf, p);
      return pos;
    case 1:
      return p + 8;
    case 2: {
      const l = varint(buf, p);
      return pos + l;
    }
    case 5:
      return p + 4;
    default:
      throw new Error(`unsupported wire type ${wt}`);
  }
}

let binCount = 0;
let lastIdStart = -1;
let lastIdEnd = -1;

/** OutgoingMessage { bytes id = 1; string body = 2; … } */
function scanMessage(buf: Buffer, start: number, end: number, sink: MessageSink): void {
  let p = start;
  let bodyStart = -1;
  let bodyEnd = -1;
  while (p < end) {
    const tag = varint(buf, p);
    p = pos;
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === 2 && (field === 1 || field === 2)) {
      const l = varint(buf, p);
      p = pos;
      if (field === 1) {
        lastIdStart = p;
        lastIdEnd = p + l;
      } else {
        bodyStart = p;
        bodyEnd = p + l;
      }
      p += l;
    } else {
      p = skip(buf, p, wt);
    }
  }
  binCount++;
  if (bodyStart !== -1) {
    const s = findSeq(buf, bodyStart, bodyEnd);
    if (s !== -1) readFields(buf, s, sink);
  }
}

/**
 * Binary mode: ResponseBatch { repeated Response responses = 1 } → Response
 * { OutgoingMessagesResponse outgoingMessages = 1 } → { repeated OutgoingMessage
 * messages = 1 }. Walked with plain loops (no decoding library, no closures); other
 * fields and other response kinds are skipped. Returns the number of OutgoingMessages.
 */
export function scanBinary(buf: Buffer, sink: MessageSink, wantMid = false): number {
  binCount = 0;
  lastIdStart = -1;
  const len = buf.length;
  let p = 0;
  while (p < len) {
    // ResponseBatch level
    const tag = varint(buf, p);
    p = pos;
    if (tag !== 0x0a) {
      p = skip(buf, p, tag & 7);
      continue;
    }
    const rl = varint(buf, p);
    p = pos;
    const rEnd = p + rl;
    let q = p;
    while (q < rEnd) {
      // Response level: field 1 = outgoingMessages
      const t2 = varint(buf, q);
      q = pos;
      if (t2 !== 0x0a) {
        q = skip(buf, q, t2 & 7);
        continue;
      }
      const ol = varint(buf, q);
      q = pos;
      const oEnd = q + ol;
      let m = q;
      while (m < oEnd) {
        // OutgoingMessagesResponse level: field 1 = OutgoingMessage
        const t3 = varint(buf, m);
        m = pos;
        if (t3 !== 0x0a) {
          m = skip(buf, m, t3 & 7);
          continue;
        }
        const ml = varint(buf, m);
        m = pos;
        scanMessage(buf, m, m + ml, sink);
        m += ml;
      }
      q = oEnd;
    }
    p = rEnd;
  }
  if (wantMid) lastMid = lastIdStart === -1 ? undefined : buf.toString('hex', lastIdStart, lastIdEnd);
  return binCount;
}

/**
 * The message body publishers send: a Bitrix-style event whose params start with
 * the three numbers receivers read, padded to about `bytes` bytes.
 */
export function benchBody(seq: number, c: number, t: number, bytes: number): string {
  const head = `{"module_id":"bench","command":"m","params":{"seq":${seq},"c":${c},"t":${t.toFixed(3)},"pad":"`;
  const tail = '"}}';
  const padLen = Math.max(0, bytes - head.length - tail.length);
  return head + PAD.slice(0, padLen) + tail;
}

const PAD = 'x'.repeat(65_536);
