import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Delivery, batchFrame, joinedFrame } from '../../src/gateway/delivery.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';
import { ChannelIdParser, createSigner, userChannelId } from '../../src/wire/channel-id.ts';
import { encodeIncomingMessage, joinRequests, parseClientText, RpcErrorCode } from '../../src/wire/json-rpc.ts';
import { TEST_KEY } from '../helpers/channels.ts';
import { channelsOf, pullToken } from '../helpers/pull-token.ts';


/** Protocol 5 framing (official-client.md §5.3–5.5). */

const MID = '17000000000000000000000042';
const BODY = '{"module_id":"im","command":"message","params":{"text":"hi\\nthere","n":1},"extra":{"server_time_unix":1700000000}}';

function stored(seq: number, body: string | Buffer, senderId?: string): StoredMessage {
  return { seq, key: 'priv.x', body: Buffer.isBuffer(body) ? body : Buffer.from(body), expirySec: 60, timeMs: 0, senderId, pubId: undefined, firstSeq: undefined, prevSeq: undefined };
}

describe('incoming.message', () => {
  it('carries the mid, the body as published and the backend as sender', () => {
    const out = encodeIncomingMessage(MID, Buffer.from(BODY), undefined)!;
    assert.equal(out.toString(), `{"jsonrpc":"2.0","method":"incoming.message","params":{"mid":"${MID}","body":${BODY},"sender":{"type":2,"id":""}}}`);
    assert.deepEqual(JSON.parse(out.toString()).params.body, JSON.parse(BODY));
  });

  it("names a client sender by its public id", () => {
    const out = JSON.parse(encodeIncomingMessage(MID, Buffer.from(BODY), 'ab'.repeat(16))!.toString());
    assert.deepEqual(out.params.sender, { type: 1, id: 'ab'.repeat(16) });
  });

  it('keeps raw line breaks and U+2028 in a body: JSON allows them, the frame stays one JSON text', () => {
    const body = '{"module_id":"m",\n"command":"c","params":{"t":"a\u2028b"}}';
    const out = JSON.parse(encodeIncomingMessage(MID, Buffer.from(body), undefined)!.toString());
    assert.equal(out.params.body.params.t, 'a\u2028b');
  });

  it('re-serializes an object body that is not valid UTF-8, so the text frame is', () => {
    const bad = Buffer.concat([Buffer.from('{"module_id":"m","command":"c","params":{"t":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
    const out = encodeIncomingMessage(MID, bad, undefined)!;
    assert.ok(Buffer.from(out.toString('utf8'), 'utf8').equals(out), 'valid UTF-8');
    assert.equal(JSON.parse(out.toString()).params.body.params.t, '\ufffd\ufffd');
  });

  it('has nothing for a body the client cannot read: not JSON, an array, a string, null', () => {
    for (const b of ['not json', '[1,2]', '"text"', 'null', '', '{"a":']) assert.equal(encodeIncomingMessage(MID, Buffer.from(b), undefined), undefined, b);
  });

  it('several messages are one JSON-RPC batch, skipping the unreadable ones; only unreadable ones make an empty frame', () => {
    const a = new Delivery(stored(1, BODY), 1_700_000_000, 0);
    const bad = new Delivery(stored(2, 'plain text'), 1_700_000_000, 0);
    const c = new Delivery(stored(3, BODY), 1_700_000_000, 0);
    const frame = JSON.parse(batchFrame([a, bad, c], 'jsonrpc', 'replay').toString()) as Array<{ params: { mid: string } }>;
    assert.deepEqual(frame.map((r) => r.params.mid), [a.mid, c.mid]);
    assert.equal(JSON.parse(joinedFrame([a, c], 'jsonrpc').toString()).length, 2);
    assert.equal(batchFrame([bad], 'jsonrpc', 'live').length, 0);
    assert.equal(batchFrame([bad, bad], 'jsonrpc', 'live').length, 0);
    // The same delivery still frames as text for text-mode connections.
    assert.ok(a.chunk('text').toString().startsWith('#!NGINXNMS!#'));
  });

  it('joinRequests: one alone, more as an array', () => {
    assert.equal(joinRequests([Buffer.from('{"a":1}')]).toString(), '{"a":1}');
    assert.equal(joinRequests([Buffer.from('{"a":1}'), Buffer.from('{"b":2}')]).toString(), '[{"a":1},{"b":2}]');
  });
});

describe('what a protocol 5 client sends', () => {
  it('pong and mack', () => {
    assert.deepEqual(parseClientText('pong'), { kind: 'pong' });
    assert.deepEqual(parseClientText(`mack:${MID}`), { kind: 'mack', mid: MID });
    assert.equal(parseClientText('mack:').kind, 'invalid');
    assert.equal(parseClientText('mack:<script>').kind, 'invalid');
  });

  it('a request, a notification, a batch; responses from the client are ignored', () => {
    assert.deepEqual(parseClientText('{"jsonrpc":"2.0","method":"ping","params":{},"id":3}'), { kind: 'requests', requests: [{ method: 'ping', params: {}, id: 3 }] });
    assert.deepEqual(parseClientText('{"jsonrpc":"2.0","method":"ping"}'), { kind: 'requests', requests: [{ method: 'ping', params: undefined, id: undefined }] });
    const batch = parseClientText('[{"jsonrpc":"2.0","method":"a","id":"x"},{"jsonrpc":"2.0","id":9,"result":{}},{"jsonrpc":"2.0","method":"b","id":2}]');
    assert.deepEqual(batch.kind === 'requests' && batch.requests.map((r) => [r.method, r.id]), [['a', 'x'], ['b', 2]]);
  });

  it('garbage is a parse error or an invalid request, never a throw', () => {
    assert.deepEqual(parseClientText('{oops'), { kind: 'invalid', code: RpcErrorCode.ParseError, message: 'Parse error' });
    for (const t of ['{}', '{"jsonrpc":"1.0","method":"x"}', '{"jsonrpc":"2.0","method":""}', '{"jsonrpc":"2.0","method":"x","id":{}}', '[1]', '"ping"', '42', 'null']) {
      const r = parseClientText(t);
      assert.equal(r.kind, 'invalid', t);
      assert.equal(r.kind === 'invalid' && r.code, RpcErrorCode.InvalidRequest, t);
    }
  });
});

describe('token=<jwt>', () => {
  const signer = createSigner(['old-key', TEST_KEY], 'sha1');
  const parser = new ChannelIdParser(signer);
  const now = 1_700_000_000;
  const shared = 'ab'.repeat(16);
  const claims = { iss: 'host-1', iat: now - 10, exp: now + 43_200, sub: '42', chan: shared };

  it("names the token's channels and its user's channel; any configured key signs", () => {
    assert.deepEqual(channelsOf(parser, pullToken(claims), now), [{ privateId: shared }, { privateId: userChannelId('host-1', '42') }]);
    assert.deepEqual(channelsOf(parser, pullToken(claims, 'old-key'), now)?.length, 2);
    assert.deepEqual(channelsOf(parser, pullToken({ ...claims, sub: undefined }), now), [{ privateId: shared }]);
    assert.deepEqual(channelsOf(parser, pullToken({ ...claims, chan: undefined }), now), [{ privateId: userChannelId('host-1', '42') }]);
  });

  it('user channels differ by user and by portal', () => {
    assert.notEqual(userChannelId('host-1', '42'), userChannelId('host-1', '43'));
    assert.notEqual(userChannelId('host-1', '42'), userChannelId('host-2', '42'));
    assert.match(userChannelId('host-1', '42'), /^[0-9a-f]{32}$/);
  });

  it('refuses forged, expired, unsigned and malformed tokens', () => {
    const good = pullToken(claims);
    const bad = [
      pullToken(claims, 'another-key'),
      pullToken({ ...claims, exp: now }),
      pullToken({ ...claims, exp: undefined }),
      pullToken({ ...claims, iss: '' }),
      pullToken({ ...claims, sub: 'admin' }),
      pullToken({ ...claims, chan: 'nothex' }),
      pullToken({ ...claims, sub: undefined, chan: '' }),
      pullToken(claims, TEST_KEY, { alg: 'none' }),
      pullToken(claims, TEST_KEY, { alg: 'HS512' }),
      `${good.split('.').slice(0, 2).join('.')}.`,
      good.slice(0, -2),
      'a.b',
      '',
      '...',
      'x'.repeat(5000),
    ];
    for (const t of bad) assert.equal(channelsOf(parser, t, now), null, t.slice(0, 80));
    assert.equal(channelsOf(new ChannelIdParser(createSigner(undefined, 'sha1')), good, now), null, 'no key configured');
  });
});
