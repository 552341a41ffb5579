import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs';
import { ChannelIdParser, createSigner, receiversOf } from '../../src/wire/channel-id.ts';
import { formatMid, midFromBytes, midToBytes, parseMid } from '../../src/wire/mid.ts';
import { decodeRequestBatch, encodeResponseEntry } from '../../src/wire/protobuf.ts';
import { encodeTextMessage, withoutMarkers } from '../../src/wire/text-frame.ts';
import { SPEC } from '../helpers/channels.ts';

const signer = createSigner('testkey', 'sha1');
const parser = new ChannelIdParser(signer);

describe('wire - channel ids (spec §2)', () => {
  it('signs the spec test vector', () => {
    assert.equal(signer.sign(SPEC.priv), SPEC.privSig);
    assert.equal(signer.sign(`${SPEC.priv}:${SPEC.pub}`), SPEC.privPubSig);
    assert.equal(signer.sign(`public:${SPEC.pub}`), SPEC.publicSig);
    assert.equal(signer.sign(SPEC.shared), SPEC.sharedSig);
  });

  it('parses the spec CHANNEL_ID into private and public receivers', () => {
    const tokens = parser.parse(SPEC.channelId, 'subscribe');
    assert.deepEqual(tokens, [{ privateId: SPEC.priv, publicId: SPEC.pub }, { privateId: SPEC.shared }]);
    assert.deepEqual(receiversOf(tokens!), [
      { id: SPEC.priv, isPrivate: true },
      { id: SPEC.shared, isPrivate: true },
      { id: SPEC.pub, isPrivate: false },
    ]);
  });

  it('applies the verification table of §2.4', () => {
    const cases: Array<[string, 'subscribe' | 'trusted', boolean]> = [
      [SPEC.priv, 'subscribe', false],
      [SPEC.priv, 'trusted', true],
      [`${SPEC.priv}.${SPEC.privSig}`, 'subscribe', true],
      [`${SPEC.priv}.${'0'.repeat(40)}`, 'subscribe', false],
      [`${SPEC.priv}.${'0'.repeat(40)}`, 'trusted', true],
      [`${SPEC.priv}:${SPEC.pub}`, 'subscribe', false],
      [`${SPEC.priv}:${SPEC.pub}`, 'trusted', false],
      [`${SPEC.priv}:${SPEC.pub}.${SPEC.privPubSig}`, 'trusted', true],
      [`${SPEC.priv}:${SPEC.pub}.${SPEC.privSig}`, 'trusted', false],
      [`${SPEC.pub}.${SPEC.publicSig}`, 'subscribe', false],
      [`${SPEC.priv}.${SPEC.privSig}`.toUpperCase(), 'subscribe', false],
      [`${SPEC.priv}.${SPEC.privSig.slice(1)}`, 'trusted', false],
      ['', 'subscribe', false],
      [`${SPEC.priv}.${SPEC.privSig}/`, 'subscribe', false],
    ];
    for (const [value, mode, ok] of cases) {
      assert.equal(parser.parse(value, mode) !== null, ok, `${value} in ${mode}`);
    }
  });

  it('rejects a repeated CHANNEL_ID (an array) and removes duplicate tokens', () => {
    assert.equal(parser.parse([SPEC.priv, SPEC.priv], 'trusted'), null);
    const token = `${SPEC.priv}:${SPEC.pub}.${SPEC.privPubSig}`;
    assert.equal(parser.parse(`${token}/${token}/${SPEC.shared}.${SPEC.sharedSig}`, 'subscribe')!.length, 2);
  });

  it('without a key: private ids need no signature, priv:pub is always refused', () => {
    const open = new ChannelIdParser(createSigner(undefined, 'sha1'));
    assert.ok(open.parse(SPEC.priv, 'subscribe'));
    assert.ok(open.parse(`${SPEC.priv}.${'f'.repeat(40)}`, 'subscribe'));
    assert.equal(open.parse(`${SPEC.priv}:${SPEC.pub}.${SPEC.privPubSig}`, 'subscribe'), null);
  });

  it('sha256 keys expect 64-hex signatures', () => {
    const s = createSigner('testkey', 'sha256');
    const p = new ChannelIdParser(s);
    assert.equal(s.signatureHexLength, 64);
    assert.ok(p.parse(`${SPEC.priv}.${s.sign(SPEC.priv)}`, 'subscribe'));
    assert.equal(p.parse(`${SPEC.priv}.${SPEC.privSig}`, 'subscribe'), null);
  });

  it('verifyHexBytes: lowercase hex HMAC of bytes or a string, anything else false', () => {
    const body = Buffer.from('{"a":"ü"}', 'utf8');
    const good = createHmac('sha1', 'testkey').update(body).digest('hex');
    assert.ok(signer.verifyHexBytes(body, good));
    assert.ok(signer.verifyHexBytes(body.toString('utf8'), good), 'a string is signed as its UTF-8 bytes');
    assert.ok(signer.verifyHexBytes('', createHmac('sha1', 'testkey').update('').digest('hex')));
    for (const bad of [good.toUpperCase(), good.slice(0, 39), `${good}0`, `${good.slice(0, 38)}zz`, '', 'x'.repeat(40)]) {
      assert.equal(signer.verifyHexBytes(body, bad), false, bad);
    }
    assert.equal(signer.verifyHexBytes(Buffer.from('{"a":"u"}'), good), false);
    assert.equal(createSigner(undefined, 'sha1').verifyHexBytes(body, good), false, 'no key verifies nothing');
  });
});

describe('wire - mid (spec §3.1)', () => {
  it('is 10 epoch digits then a 16-digit counter, 13 bytes in binary', () => {
    const mid = formatMid(1795315940, 1);
    assert.equal(mid, '17953159400000000000000001');
    assert.deepEqual(parseMid(mid), { epoch: 1795315940, seq: 1 });
    assert.equal(midToBytes(mid).length, 13);
    assert.equal(midFromBytes(midToBytes(mid)), mid);
  });

  it('ignores anything but 26 digits and clamps counters beyond 2^53', () => {
    for (const bad of ['abc', '1795315940000000000000000', '179531594000000000000000011', '1795315940000000000000000a', '', undefined, 42]) {
      assert.equal(parseMid(bad), undefined, String(bad));
    }
    assert.equal(parseMid('99999999999999999999999999')!.seq, Number.MAX_SAFE_INTEGER);
  });
});

describe('wire - text frame (spec §3.2)', () => {
  it('is byte-exact with the body inserted verbatim', () => {
    const body = Buffer.from('{"module_id":"test","command":"hello","params":{"a":1}}');
    const at = Date.UTC(2026, 10, 22, 2, 52, 20, 7);
    const frame = encodeTextMessage(1, '17953159400000000000000001', body, at).toString('utf8');
    assert.equal(
      frame,
      '#!NGINXNMS!#{"id":1,"mid":"17953159400000000000000001","channel":"-","tag":"007","time":"Sun, 22 Nov 2026 02:52:20 GMT",' +
        '"text":{"module_id":"test","command":"hello","params":{"a":1}}}#!NGINXNME!#',
    );
  });

  it('keeps multi-byte UTF-8 bodies intact', () => {
    const body = Buffer.from('{"t":"привет ✓"}');
    const frame = encodeTextMessage(2, formatMid(1, 2), body, 0).toString('utf8');
    assert.ok(frame.includes('"text":{"t":"привет ✓"}}#!NGINXNME!#'));
  });

  it('writes the # of a frame marker inside a body as \\u0023: one message, the same JSON value', () => {
    const value = { s: '}#!NGINXNME!##!NGINXNMS!#{"id":1,"text":{}}#!NGINXNME!#', t: '#!NGINXNM#!NGINX', u: '\\#!NGINXNMS!#' };
    const body = Buffer.from(JSON.stringify({ module_id: 'm', command: 'c', params: value }));
    const frame = encodeTextMessage(3, formatMid(1, 3), body, 0).toString('utf8');
    const blocks = [...frame.matchAll(/#!NGINXNMS!#(.*?)#!NGINXNME!#/g)];
    assert.equal(blocks.length, 1, frame);
    assert.equal(blocks[0]!.index, 0);
    assert.equal(blocks[0]![0].length, frame.length);
    assert.deepEqual((JSON.parse(blocks[0]![1]!) as { text: { params: unknown } }).text.params, value);
  });

  it('leaves a body without markers as it is, and bodies that are not JSON cannot open a frame', () => {
    const plain = Buffer.from('{"a":"#!NGINX"}');
    assert.equal(withoutMarkers(plain), plain);
    const raw = Buffer.from('{}}#!NGINXNME!##!NGINXNMS!#{"id":1,"text":{"module_id":"x"}');
    const frame = encodeTextMessage(4, formatMid(1, 4), raw, 0).toString('utf8');
    assert.equal([...frame.matchAll(/#!NGINXNMS!#/g)].length, 1);
    assert.equal([...frame.matchAll(/#!NGINXNME!#/g)].length, 1);
    assert.ok(frame.endsWith('}#!NGINXNME!#'));
  });
});

describe('wire - protobuf (spec §3.4)', () => {
  const delivery = (mid: string, body: string, expirySec: number, timeMs: number, senderId?: string) => ({
    mid,
    msg: { body: Buffer.from(body), expirySec, timeMs, senderId },
  });

  it('encodes the spec example ResponseBatch byte for byte', () => {
    const bytes = encodeResponseEntry([delivery('17953159400000000000000001', '{}', 60, 1795315940_123)]);
    assert.equal(bytes.toString('hex'), '0a220a200a1e0a0d1795315940000000000000000112027b7d183c25e458026b2a020802');
  });

  it('sends CLIENT with the sender id for client publishes, and concatenated entries form one batch', () => {
    const root = protobuf.loadSync(new URL('../../src/wire/push.proto', import.meta.url).pathname);
    const T = root.lookupType('ResponseBatch');
    const a = encodeResponseEntry([delivery(formatMid(1, 1), '{"a":1}', 0, 5_000, SPEC.pub)]);
    const b = encodeResponseEntry([delivery(formatMid(1, 2), '{"b":2}', 30, 6_000)]);
    const decoded = T.toObject(T.decode(Buffer.concat([a, b])), { bytes: String, defaults: true }) as {
      responses: Array<{ outgoingMessages: { messages: Array<{ body: string; created: number; expiry: number; sender: { type: number; id: string } }> } }>;
    };
    assert.equal(decoded.responses.length, 2);
    const [m1] = decoded.responses[0]!.outgoingMessages.messages;
    assert.equal(m1!.sender.type, 1);
    assert.equal(Buffer.from(m1!.sender.id, 'base64').toString('hex'), SPEC.pub);
    assert.equal(m1!.created, 5);
    assert.equal(decoded.responses[1]!.outgoingMessages.messages[0]!.sender.type, 2);
  });

  it('decodes the spec publish example; a Request with an unknown field 4 has no command', () => {
    const hex =
      '0a4e0a4c0a4a0a140a10c4ca4238a0b923820dcc509a6f75849b10011a2b7b226d6f64756c655f6964223a2274222c22636f6d6d616e64223a2263222c22706172616d73223a7b7d7d203c2a03745f63';
    const [req] = decodeRequestBatch(Buffer.from(hex, 'hex'));
    assert.equal(req!.command, 'incomingMessages');
    const msg = req!.incomingMessages!.messages![0]!;
    assert.equal(Buffer.from(msg.receivers![0]!.id!).toString('hex'), SPEC.priv);
    assert.equal(msg.receivers![0]!.isPrivate, true);
    assert.equal(msg.expiry, 60);
    assert.equal(msg.type, 't_c');
    const [registration] = decodeRequestBatch(Buffer.from('0a022200', 'hex'));
    assert.equal(registration!.command, undefined);
    assert.throws(() => decodeRequestBatch(Buffer.from('0102030405', 'hex')));
  });
});
