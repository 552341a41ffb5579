/** What JetStream answers to a publish with a reply subject (fields jetpull reads). */
export interface PubAck {
  seq?: number;
  duplicate?: boolean;
  count?: number;
  error?: { code?: number; err_code?: number; description?: string };
}

const STREAM = Buffer.from('"stream"');
const SEQ = Buffer.from('"seq"');
const DUPLICATE = Buffer.from('"duplicate"');
const TRUE = Buffer.from('true');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** 15 digits always fit a double exactly; the server's sequences are far below. */
const MAX_DIGITS = 15;

/**
 * Reads an acknowledgement. The plain success answers the server gives on every
 * publish, `{"stream":"<name>","seq":<n>}` and the same with `,"duplicate":true`,
 * are read from the bytes (JSON.parse of each was a few per cent of publishing);
 * anything else (errors, batch answers, a domain) goes through JSON.parse. Throws
 * as JSON.parse does on bytes that are not JSON.
 */
export function parsePubAck(data: Uint8Array): PubAck {
  return plainAck(data) ?? (JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as PubAck);
}

/**
 * The plain success answers, or undefined for anything else. Servers space them
 * differently (2.9: `{"stream":"S", "seq":1}`, 2.15: `{"stream":"S","seq":1}`, both
 * `,"duplicate": true}`), so whitespace between the tokens is skipped as JSON allows.
 */
export function plainAck(data: Uint8Array): PubAck | undefined {
  const r = new Reader(data);
  if (!r.take(0x7b) || !r.take(STREAM) || !r.take(0x3a) || !r.skipString() || !r.take(0x2c) || !r.take(SEQ) || !r.take(0x3a)) return undefined;
  const seq = r.integer();
  if (seq === undefined) return undefined;
  let duplicate = false;
  if (r.take(0x2c)) {
    if (!r.take(DUPLICATE) || !r.take(0x3a) || !r.take(TRUE)) return undefined;
    duplicate = true;
  }
  return r.take(0x7d) && r.atEnd() ? { seq, duplicate } : undefined;
}

/** A cursor over the answer's bytes; every step skips the whitespace before its token. */
class Reader {
  private i = 0;

  constructor(private readonly data: Uint8Array) {}

  /** One byte or a run of bytes, next after whitespace. */
  take(what: number | Uint8Array): boolean {
    this.skipWhitespace();
    if (typeof what === 'number') {
      if (this.data[this.i] !== what) return false;
      this.i++;
      return true;
    }
    if (this.i + what.length > this.data.length) return false;
    for (let k = 0; k < what.length; k++) if (this.data[this.i + k] !== what[k]) return false;
    this.i += what.length;
    return true;
  }

  /** A string without escapes or control characters (which only JSON.parse reads right). */
  skipString(): boolean {
    if (!this.take(QUOTE)) return false;
    const d = this.data;
    while (this.i < d.length && d[this.i] !== QUOTE) {
      if (d[this.i] === BACKSLASH || d[this.i]! < 0x20) return false;
      this.i++;
    }
    return this.take(QUOTE);
  }

  /** A non-negative integer as JSON writes it (no leading zero, no fraction or exponent). */
  integer(): number | undefined {
    this.skipWhitespace();
    const d = this.data;
    const from = this.i;
    let n = 0;
    while (this.i < d.length && d[this.i]! >= 0x30 && d[this.i]! <= 0x39) n = n * 10 + (d[this.i++]! - 0x30);
    const digits = this.i - from;
    if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && d[from] === 0x30)) return undefined;
    const after = d[this.i];
    if (after === 0x2e || after === 0x65 || after === 0x45) return undefined;
    return n;
  }

  atEnd(): boolean {
    this.skipWhitespace();
    return this.i === this.data.length;
  }

  private skipWhitespace(): void {
    const d = this.data;
    while (this.i < d.length && (d[this.i] === 0x20 || d[this.i] === 0x0a || d[this.i] === 0x0d || d[this.i] === 0x09)) this.i++;
  }
}
