/**
 * The official client finds text frames with `/#!NGINXNMS!#(.*?)#!NGINXNME!#/g`: `.`
 * stops at a line terminator (LF, CR, U+2028, U+2029), so a body holding one is lost
 * without a trace. In JSON a raw LF or CR can only be whitespace between tokens, and
 * U+2028/U+2029 only a character inside a string, so a space and the `\u2028` escape
 * keep every JSON body's value while the frame stays on one line. Pretty-printed JSON
 * and JSON.stringify output (which leaves U+2028/U+2029 raw) need this.
 */

const LS = Buffer.from('\u2028', 'utf8');
const PS = Buffer.from('\u2029', 'utf8');
const ESCAPED_LS = Buffer.from('\\u2028', 'latin1');
const ESCAPED_PS = Buffer.from('\\u2029', 'latin1');
const SPACE = Uint8Array.of(0x20);

/** The body itself when it has no line terminator (the common case, no copy), else a one-line copy. */
export function withoutLineBreaks(body: Uint8Array): Uint8Array {
  const b = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // Byte searches (memchr) first: most bodies have no 0xE2, the lead byte of U+2028/U+2029.
  const lead = b.indexOf(0xe2);
  const separators = lead !== -1 && (b.indexOf(LS, lead) !== -1 || b.indexOf(PS, lead) !== -1);
  if (!separators && b.indexOf(0x0a) === -1 && b.indexOf(0x0d) === -1) return body;
  const parts: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x0a || c === 0x0d) {
      parts.push(b.subarray(start, i), SPACE);
      start = i + 1;
    } else if (c === 0xe2 && b[i + 1] === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9)) {
      // E2 is never a continuation byte: this is U+2028 or U+2029, whatever surrounds it.
      parts.push(b.subarray(start, i), b[i + 2] === 0xa8 ? ESCAPED_LS : ESCAPED_PS);
      i += 2;
      start = i + 1;
    }
  }
  parts.push(b.subarray(start));
  return Buffer.concat(parts);
}
