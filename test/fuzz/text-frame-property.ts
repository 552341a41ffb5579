import assert from 'node:assert/strict';
import { B24PullClientManager } from '@bitrix24/b24jssdk';
import fc from 'fast-check';
import { formatMid } from '../../src/wire/mid.ts';
import { encodeTextMessage } from '../../src/wire/text-frame.ts';
import { fuzz } from '../helpers/fuzz.ts';

/**
 * The text-framing property shared by text-frame.test.ts (bodies without the framing
 * markers) and text-frame-markers.test.ts (bodies with them): the messages of a frame,
 * encoded and concatenated as the gateway sends them, come out of the official client's
 * own splitter (`extractPlainTextMessages` of @bitrix24/b24jssdk: the marker regex, 12
 * characters off each side, JSON.parse, bad JSON skipped) as exactly the messages put in.
 */

export const START = '#!NGINXNMS!#';
export const END = '#!NGINXNME!#';

const clientSplit = (B24PullClientManager.prototype as unknown as { extractPlainTextMessages(this: unknown, text: string): unknown[] })
  .extractPlainTextMessages;
const quietClient = { getLogger: () => ({ warning: () => Promise.resolve() }) };

/** What the official client makes of one WebSocket text frame or long-poll body. */
export function officialClientMessages(text: string): unknown[] {
  return clientSplit.call(quietClient, text);
}

/** Characters that matter to the framing and to JSON, mixed into ordinary text. */
const awkward = fc.constantFrom('\n', '\r', '\u2028', '\u2029', '"', '\\', '#', '!', '}', '{', ':', ',', '\t', '\u0000', '\u00ab', '\u2014', '\ud83d\ude00', '\ufeff');
const markerPiece = fc.constantFrom(START, END, '#!NGINXNM', 'E!#', '#!NGINX');

function stringUnit(markers: boolean): fc.Arbitrary<string> {
  return markers
    ? fc.oneof({ weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 1 }) }, awkward, { weight: 2, arbitrary: markerPiece })
    : fc.oneof({ weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 1 }) }, awkward);
}

/** JSON as other encoders write it: PHP's json_encode (ASCII only, `\/`) and pretty-printers. */
function phpJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/\//g, '\\/')
    .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const serializer = fc.constantFrom<[string, (v: unknown) => string]>(
  ['compact', (v) => JSON.stringify(v)],
  ['php', phpJson],
  ['pretty, 2 spaces', (v) => JSON.stringify(v, null, 2)],
  ['pretty, tabs and CRLF', (v) => JSON.stringify(v, null, '\t').replace(/\n/g, '\r\n')],
  ['padded', (v) => ` \r\n${JSON.stringify(v)}\n\t`],
);

/** A published body: any JSON value, written by one of the encoders a portal or a NATS backend uses. */
export function jsonBody(markers: boolean): fc.Arbitrary<{ value: unknown; body: string }> {
  const unit = stringUnit(markers);
  const message = fc.record({
    module_id: fc.string({ unit, maxLength: 12 }),
    command: fc.string({ unit, maxLength: 12 }),
    params: fc.dictionary(fc.string({ unit, maxLength: 8 }), fc.jsonValue({ stringUnit: unit, maxDepth: 3 }), { maxKeys: 4 }),
  });
  const value = fc.oneof(message, fc.jsonValue({ stringUnit: unit, maxDepth: 4 }));
  return fc.tuple(value, serializer).map(([v, [, write]]) => ({ value: JSON.parse(JSON.stringify(v)) as unknown, body: write(v) }));
}

const hasMarker = (s: string): boolean => s.includes(START) || s.includes(END);

export interface FrameCase {
  bodies: Array<{ value: unknown; body: string }>;
  firstSeq: number;
  epochSec: number;
  nowMs: number;
}

export function frameCase(markers: boolean): fc.Arbitrary<FrameCase> {
  const body = markers ? jsonBody(true).filter((b) => hasMarker(b.body)) : jsonBody(false).filter((b) => !hasMarker(b.body));
  const bodies = markers
    ? fc.tuple(fc.array(jsonBody(false), { maxLength: 3 }), body, fc.array(jsonBody(false), { maxLength: 3 })).map(([a, m, b]) => [...a, m, ...b])
    : fc.array(body, { minLength: 1, maxLength: 8 });
  return fc.record({
    bodies,
    firstSeq: fc.integer({ min: 1, max: 2 ** 40 }),
    epochSec: fc.integer({ min: 1_600_000_000, max: 2_000_000_000 }),
    nowMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  });
}

/** Encodes the case as one frame and checks what the official client reads from it. */
export function framesParseBack(c: FrameCase): boolean {
  const encoded = c.bodies.map((b, i) => encodeTextMessage(c.firstSeq + i, formatMid(c.epochSec, c.firstSeq + i), Buffer.from(b.body, 'utf8'), c.nowMs));
  const text = Buffer.concat(encoded).toString('utf8');
  const expected = c.bodies.map((b, i) => ({
    id: c.firstSeq + i,
    mid: formatMid(c.epochSec, c.firstSeq + i),
    channel: '-',
    tag: String(c.nowMs % 1000).padStart(3, '0'),
    time: new Date(c.nowMs).toUTCString(),
    text: b.value,
  }));
  assert.deepEqual(officialClientMessages(text), expected);
  return true;
}

/** Corpus inputs are `[FrameCase]`, bodies given as `{value, body}` like the generator's. */
export async function checkFraming(suite: string, property: string, markers: boolean, runs: number): Promise<void> {
  await fuzz(suite, property, fc.property(frameCase(markers), framesParseBack), { runs });
}
