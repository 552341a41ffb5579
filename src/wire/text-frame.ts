import { withoutLineBreaks } from './line-breaks.ts';

/**
 * Text-mode message framing (spec §3.2), byte-exact:
 *
 *   #!NGINXNMS!#{"id":<seq>,"mid":"<mid>","channel":"-","tag":"<3 digits>","time":"<RFC1123>","text":<body>}#!NGINXNME!#
 *
 * The body is inserted verbatim, except that every `#` opening a frame marker
 * (`#!NGINXNM`) becomes `\u0023`. Clients cut frames out with
 * /#!NGINXNMS!#(.*?)#!NGINXNME!#/, so a marker in a body would end its message early
 * and could add forged ones. In valid JSON a `#` stands only inside a string, where
 * `\u0023` is the same character, so JSON.parse gives the client the same value; a
 * body that is not JSON was unreadable anyway. Line terminators, which the official
 * client cannot read across, become spaces or escapes first (line-breaks.ts). Several
 * messages in one frame or body are simply concatenated. `tag` and `time` come from the moment the frame is built,
 * which is once per message per gateway, not per connection.
 */

const HEAD = '#!NGINXNMS!#{"id":';
const TAIL = '}#!NGINXNME!#';
/** What every marker starts with; a body without it is copied as is. */
const MARKER_PREFIX = Buffer.from('#!NGINXNM', 'latin1');
const ESCAPED_HASH = Buffer.from('\\u0023', 'latin1');

/** `"tag":…,"time":…` of the last millisecond formatted: a replay or a burst builds many frames in the same one. */
let stampMs = -1;
let stamp = '';

function stampOf(nowMs: number): string {
  if (nowMs !== stampMs) {
    stampMs = nowMs;
    stamp = `"tag":"${String(nowMs % 1000).padStart(3, '0')}","time":"${new Date(nowMs).toUTCString()}"`;
  }
  return stamp;
}

export function encodeTextMessage(seq: number, mid: string, published: Uint8Array, nowMs: number): Buffer {
  const body = withoutLineBreaks(published);
  const head = `${HEAD}${seq},"mid":"${mid}","channel":"-",${stampOf(nowMs)},"text":`;
  const text = withoutMarkers(body);
  const headLen = Buffer.byteLength(head, 'latin1');
  const out = Buffer.allocUnsafe(headLen + text.length + TAIL.length);
  out.write(head, 0, 'latin1');
  out.set(text, headLen);
  out.write(TAIL, headLen + text.length, 'latin1');
  return out;
}

/** The body with the `#` of every `#!NGINXNM` written as `\u0023`; the body itself when there is none. */
export function withoutMarkers(body: Uint8Array): Uint8Array {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length);
  let at = buf.indexOf(MARKER_PREFIX);
  if (at === -1) return body;
  const parts: Buffer[] = [];
  let from = 0;
  while (at !== -1) {
    parts.push(buf.subarray(from, at), ESCAPED_HASH);
    from = at + 1; // keep "!NGINXNM…", drop the "#"
    at = buf.indexOf(MARKER_PREFIX, from);
  }
  parts.push(buf.subarray(from));
  return Buffer.concat(parts);
}
