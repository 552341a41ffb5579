/**
 * Message ids (spec §3.1): 26 decimal digits, a 10-digit epoch then a 16-digit
 * counter. jetpull's epoch is the creation time of the message stream (unix
 * seconds) and the counter is the JetStream stream sequence, so a mid names a
 * stream position: replay is a seek. A recreated stream has a later epoch, so
 * mids keep increasing.
 */

const MID_PATTERN = /^[0-9]{26}$/;

export interface MidPosition {
  readonly epoch: number;
  /** Stream sequence. Values beyond Number.MAX_SAFE_INTEGER are clamped to it. */
  readonly seq: number;
}

export function formatMid(epoch: number, seq: number): string {
  return String(epoch).padStart(10, '0') + String(seq).padStart(16, '0');
}

/** The mid if it is exactly 26 digits, else undefined: such a mid is ignored. */
export function parseMid(value: unknown): MidPosition | undefined {
  if (typeof value !== 'string' || !MID_PATTERN.test(value)) return undefined;
  const seq = Number(value.slice(10));
  return { epoch: Number(value.slice(0, 10)), seq: Number.isSafeInteger(seq) ? seq : Number.MAX_SAFE_INTEGER };
}

/** The 13-byte binary form: the 26 digits read as hex nibbles. */
export function midToBytes(mid: string): Buffer {
  return Buffer.from(mid, 'hex');
}

/** Inverse of midToBytes. */
export function midFromBytes(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
