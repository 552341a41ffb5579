import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sign } from '../helpers/channels.ts';
import { corpusProperties, fuzz } from '../helpers/fuzz.ts';
import { eventually } from '../helpers/wait.ts';
import { exchange, faults, startFuzzServer, type FuzzServer, type RawResponse } from './server-fixture.ts';

/**
 * Query strings and headers on every route of a running server (spec §1.3, §1.4):
 * repeated parameters, bad percent-encodings, raw bytes, huge values, any header
 * value. No request that names no valid channel gets anything but the route's 4xx
 * refusal (or, for the backend's text publish, the reference's empty 200); nothing is
 * answered 5xx or logged as a fault; and a subscriber held open through it all
 * receives every message published between two inputs.
 */

const SUITE = 'http-query';

let s: FuzzServer;
before(async () => {
  s = await startFuzzServer();
});
after(async () => {
  await s?.stop();
});

const HEX = '0123456789abcdef';
const id = fc.string({ unit: fc.constantFrom(...HEX), minLength: 32, maxLength: 32 });
const flip = (hex: string, i: number): string => hex.slice(0, i) + (hex[i] === '0' ? '1' : '0') + hex.slice(i + 1);

const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }).filter((c) => c !== ' ');

/** Text for a query: printable ASCII and percent-encodings, good and bad. */
const rawText = (maxLength: number): fc.Arbitrary<string> =>
  fc.string({
    unit: fc.oneof(
      { weight: 8, arbitrary: printable },
      { weight: 3, arbitrary: fc.constantFrom('%', '%zz', '%E9', '%C3%28', '%00', '%2F', '%3A', '%2', '+', '&', '=', ';', '#', '?', '/') },
    ),
    maxLength,
  });

/** A CHANNEL_ID value that is valid in no mode: a forged signature, a broken token, or noise. */
const invalidChannel = fc.oneof(
  fc.tuple(id, id, fc.nat({ max: 39 })).map(([p, q, i]) => `${p}:${q}.${flip(sign(`${p}:${q}`), i)}`),
  fc.tuple(id, id).map(([p, q]) => `${p}:${q}`),
  id.map((p) => `${p.toUpperCase()}Z`),
  fc.tuple(id, fc.constantFrom('/', '//', ':', '.', '%20', '%2F', '%C3%A9')).map(([p, sep]) => `${p}${sep}`),
  fc.constantFrom('', '/', ':', '.', '%', '%zz'),
  rawText(80).filter((v) => v.length > 0),
  fc.nat({ max: 9_000 }).map((n) => 'a'.repeat(n)),
);

type Param = [string, string];
const junkParam = fc.tuple(
  fc.oneof(fc.constantFrom('mid', 'binaryMode', 'revision', 'tag', 'time', 'clientId', 'jsonRpc', 'token', 'channel_id', 'CHANNEL_IDX', '', '%', '%zz'), rawText(12)),
  fc.oneof(fc.constantFrom('true', 'false', '1', '', '17953246610000000000000001', '-1', '%zz'), rawText(40), fc.nat({ max: 5_000 }).map((n) => '9'.repeat(n))),
);

/** The CHANNEL_ID parameters: none, one invalid value, or several (any values: repeated is refused). */
const channelParams = fc.oneof(
  fc.constant<Param[]>([]),
  invalidChannel.map((v): Param[] => [['CHANNEL_ID', v]]),
  fc
    .array(fc.tuple(fc.constantFrom('CHANNEL_ID', 'CHANNEL%5FID', 'CHANNEL_%49D'), fc.oneof(invalidChannel, fc.constant('VALID'))), { minLength: 2, maxLength: 4 })
    .map((ps) => ps as Param[]),
);

const ROUTES = ['long poll /bitrix/subws/', 'long poll /bitrix/sub/', 'websocket', 'rest', 'channel stats', 'text publish', 'unknown path'] as const;
type Route = (typeof ROUTES)[number];

const headerName = fc.oneof(
  fc.constantFrom('Message-Expiry', 'Idempotency-Key', 'Origin', 'Content-Type', 'If-None-Match', 'If-Modified-Since', 'Cookie', 'X-Forwarded-For', 'Accept', 'User-Agent', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Last-Message-Id'),
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_!#$%&\'*+.^`|~'), minLength: 1, maxLength: 20 }),
);
/** Header values without CR/LF (message framing is the HTTP parser's business, not ours). */
const headerValue = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: fc.oneof({ weight: 10, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) }, fc.constantFrom('\u00e9', '\u00ff', '\u0080', '\t')), maxLength: 60 }) },
  // A control character the HTTP parser refuses in a header value.
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\u0001', '\u007f', '\u001b')).map(([a, c]) => a + c),
  { weight: 4, arbitrary: fc.constantFrom('', ' ', '-1', '0', '1e309', 'NaN', '3600', '99999999999999999999', 'websocket') },
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)), // past 16 KiB of headers: 431
);

interface Case {
  route: Route;
  params: Param[];
  separator: '&' | ';';
  /** A byte the HTTP parser refuses in a request line (control, space, 0x80-0xff), at some position. */
  badByte: [string, number] | null;
  headers: Array<[string, string]>;
}

const requestCase: fc.Arbitrary<Case> = fc.record({
  route: fc.constantFrom(...ROUTES),
  params: fc.tuple(channelParams, fc.array(junkParam, { maxLength: 5 })).chain(([c, j]) => fc.shuffledSubarray([...c, ...j], { minLength: c.length + j.length })),
  separator: fc.constantFrom('&', ';'),
  badByte: fc.oneof(
    { weight: 9, arbitrary: fc.constant(null) },
    fc.tuple(fc.constantFrom('\u0000', '\u0001', '\t', ' ', '\u007f', '\u00e9', '\u00ff'), fc.nat()),
  ),
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 4 }),
});

const FRAMING = /^(content-length|transfer-encoding|connection|upgrade|host|expect|te|trailer|sec-websocket-key|sec-websocket-version)$/i;

function requestBytes(c: Case, validToken: string): Buffer {
  let query = c.params.map(([k, v]) => `${k}=${v === 'VALID' ? validToken : v}`).join(c.separator);
  if (c.badByte !== null) {
    const at = c.badByte[1] % (query.length + 1);
    query = query.slice(0, at) + c.badByte[0] + query.slice(at);
  }
  const path = {
    'long poll /bitrix/subws/': '/bitrix/subws/',
    'long poll /bitrix/sub/': '/bitrix/sub/',
    websocket: '/bitrix/subws/',
    rest: '/bitrix/rest/',
    'channel stats': '/bitrix/pub/',
    'text publish': '/bitrix/pub/',
    'unknown path': '/bitrix/nothing/',
  }[c.route];
  const method = c.route === 'rest' || c.route === 'text publish' ? 'POST' : 'GET';
  const body = method === 'POST' ? '{"module_id":"fuzz","command":"x","params":{}}' : '';
  const lines = [`${method} ${path}?${query} HTTP/1.1`, 'Host: 127.0.0.1'];
  if (c.route === 'websocket') lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13');
  else lines.push('Connection: close');
  for (const [name, value] of c.headers) if (!FRAMING.test(name)) lines.push(`${name}: ${value}`);
  if (body !== '') lines.push(`Content-Length: ${body.length}`);
  // Latin-1: each character one byte, so raw bytes 0x80-0xff go out as they are.
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
}

/** Node's HTTP parser refusing the request before it reaches a route: 400 or 431, no body of ours. */
const parserRefusal = (r: RawResponse): boolean => (r.status === 400 || r.status === 431) && /\r\nConnection: close/i.test(r.head) && r.body.length === 0;

function assertAnswer(route: Route, r: RawResponse): void {
  const body = r.body.toString('latin1');
  const what = `${route}: ${r.status} ${JSON.stringify(body)}`;
  assert.ok(r.status < 500, what);
  if (parserRefusal(r)) return;
  switch (route) {
    case 'long poll /bitrix/subws/':
    case 'long poll /bitrix/sub/':
    case 'rest':
      assert.equal(r.status, 400, what);
      assert.equal(body, '4010: Wrong Channel Id.', what);
      break;
    case 'websocket':
      assert.equal(r.status, 400, what);
      assert.equal(body, 'Wrong Channel Id.', what);
      break;
    case 'channel stats':
      assert.equal(r.status, 400, what);
      assert.equal(body, '4017: No channels found.', what);
      break;
    case 'text publish':
      // No valid channel: nothing is published and the reference answers an empty 200;
      // binaryMode=true makes the JSON body a protobuf request, refused with 4013.
      assert.ok((r.status === 200 && body === '') || (r.status === 400 && body === '4013: Wrong Request Data.'), what);
      break;
    case 'unknown path':
      assert.equal(r.status, 404, what);
      break;
  }
}

describe('query strings and headers (property)', () => {
  it('requests naming no valid channel get the route refusal, never a 5xx; the witness misses nothing', async () => {
    await fuzz(
      SUITE,
      'refused',
      fc.asyncProperty(requestCase, async (c) => {
        assertAnswer(c.route, await exchange(s.app.port, requestBytes(c, s.witness.user.token)));
        await s.witness.check();
        return true;
      }),
      { runs: 500 },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('a valid text publish with any Message-Expiry and Idempotency-Key is stored and delivered once, or refused (409 for a reused key)', async () => {
    const delivered = new Set<string>();
    let n = 0;
    const keyPool = fc.constantFrom('a', 'b', 'reused key');
    const value = fc.oneof(headerValue, keyPool);
    await fuzz(
      SUITE,
      'publish-headers',
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom('Message-Expiry', 'Idempotency-Key', 'message-expiry', 'IDEMPOTENCY-KEY'), value), { maxLength: 3 }), async (headers) => {
        const tag = `p${n++}`;
        const body = JSON.stringify({ module_id: 'fuzz', command: 'publish', params: { tag } });
        const lines = [`POST /bitrix/pub/?CHANNEL_ID=${s.witness.user.priv} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers.map(([k, v]) => `${k}: ${v}`), `Content-Length: ${Buffer.byteLength(body)}`];
        const r = await exchange(s.app.port, Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'latin1'));
        const tags = (): string[] =>
          s.witness
            .received()
            .map((m) => m.text as { module_id?: string; params?: { tag?: string } })
            .filter((t) => t.module_id === 'fuzz' && t.params?.tag !== undefined)
            .map((t) => t.params!.tag!);
        if (r.status === 200) {
          delivered.add(tag);
          await eventually(`published message ${tag}`, () => tags().includes(tag), 5_000, 2);
        } else {
          assert.ok(r.status === 409 || parserRefusal(r), `${r.status} ${r.body.toString('latin1')}`);
        }
        await s.witness.check();
        assert.deepEqual(tags().filter((t) => !delivered.has(t)), [], 'a refused publish was delivered');
        assert.equal(new Set(tags()).size, tags().length, 'a publish was delivered twice');
        return true;
      }),
      { runs: 200 },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['refused', 'publish-headers'].includes(name), name);
  });
});
