import { withoutLineBreaks } from './line-breaks.ts';

/**
 * Text-mode message framing (spec §3.2), byte-exact:
 *
 *   #!NGINXNMS!#{"id":<seq>,"mid":"<mid>","channel":"-","tag":"<3 digits>","time":"<RFC1123>","text":<body>}#!NGINXNME!#
 *
 * The body is inserted verbatim, but for line terminators, which the official client
 * cannot read across (line-breaks.ts). Several messages in one frame or body are simply
 * concatenated. `tag` and `time` come from the moment the frame is built, which is
 * once per message per gateway, not per connection.
 */

const HEAD = '#!NGINXNMS!#{"id":';
const TAIL = '}#!NGINXNME!#';

export function encodeTextMessage(seq: number, mid: string, published: Uint8Array, nowMs: number): Buffer {
  const body = withoutLineBreaks(published);
  const tag = String(nowMs % 1000).padStart(3, '0');
  const time = new Date(nowMs).toUTCString();
  const head = `${HEAD}${seq},"mid":"${mid}","channel":"-","tag":"${tag}","time":"${time}","text":`;
  const headLen = Buffer.byteLength(head, 'latin1');
  const out = Buffer.allocUnsafe(headLen + body.length + TAIL.length);
  out.write(head, 0, 'latin1');
  out.set(body, headLen);
  out.write(TAIL, headLen + body.length, 'latin1');
  return out;
}
