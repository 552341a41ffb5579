import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChannelIdParser, createSigner, userChannelId } from '../../src/wire/channel-id.ts';
import { encodeIncomingMessage, parseClientText } from '../../src/wire/json-rpc.ts';
import { encodePullToken } from '../../src/wire/jwt.ts';
import { corpusProperties, fuzz } from '../helpers/fuzz.ts';
import { channelsOf } from '../helpers/pull-token.ts';


/**
 * Protocol 5's parsers against any input: a client's text (frame or POST body) is
 * always classified, never thrown on; a token is accepted only as signed and unexpired,
 * whatever bytes are flipped; an incoming.message is always one valid JSON text (or
 * nothing) whatever the stored body is.
 */

const SUITE = 'json-rpc';
const KEY = 'fuzzkey';
const signer = createSigner(KEY, 'sha1');
const parser = new ChannelIdParser(signer);
const NOW = 1_700_000_000;
const id = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 32 });
const jsonish = fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v)), fc.constantFrom('pong', 'mack:', 'mack:1', 'ping', '[]', '[{}]', '{"jsonrpc":"2.0"}'));

describe('fuzz: protocol 5', () => {
  it('a client text is pong, mack, requests or invalid, never a throw', async () => {
    await fuzz(
      SUITE,
      'client-text',
      fc.property(jsonish, (text) => {
        const r = parseClientText(text);
        assert.ok(['pong', 'mack', 'requests', 'invalid'].includes(r.kind));
        if (r.kind === 'requests') for (const q of r.requests) assert.ok(typeof q.method === 'string' && q.method.length > 0);
        return true;
      }),
      { runs: 2_000 },
    );
  });

  it('a signed token round-trips; one flipped character is refused, or still names exactly what was signed', async () => {
    await fuzz(
      SUITE,
      'token',
      fc.property(
        fc.record({ user: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }), chans: fc.array(id, { minLength: 0, maxLength: 3 }), at: fc.nat(), by: fc.nat({ max: 63 }) }),
        ({ user, chans, at, by }) => {
          if (user === undefined && chans.length === 0) return true;
          const token = encodePullToken({ hostId: 'h', userId: user === undefined ? undefined : String(user), channelIds: chans, nowSec: NOW, ttlSec: 60 }, (m) => signer.signSha256(m)!);
          const expected = [...new Set([...chans, ...(user === undefined ? [] : [userChannelId('h', String(user))])])].map((privateId) => ({ privateId }));
          assert.deepEqual(channelsOf(parser, token, NOW), expected);
          assert.equal(channelsOf(parser, token, NOW + 60), null, 'expired');
          const i = at % token.length;
          const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
          const flipped = token.slice(0, i) + alphabet[(alphabet.indexOf(token[i]!) + 1 + by) % alphabet.length] + token.slice(i + 1);
          const got = channelsOf(parser, flipped, NOW);
          // base64url's last character may carry unused bits: such a flip decodes to the same signature.
          assert.ok(got === null || JSON.stringify(got) === JSON.stringify(expected), flipped);
          return true;
        },
      ),
      { runs: 500 },
    );
  });

  it('any string is a token or not, never a throw', async () => {
    await fuzz(
      SUITE,
      'token-garbage',
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'ABCabc012-_.') })), (t) => {
        const r = channelsOf(parser, t, NOW);
        assert.ok(r === null || Array.isArray(r));
        return true;
      }),
      { runs: 2_000 },
    );
  });

  it('an incoming.message is nothing or one valid UTF-8 JSON text whose body is the stored object', async () => {
    await fuzz(
      SUITE,
      'incoming-message',
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), jsonish.map((s) => new Uint8Array(Buffer.from(s)))), (body) => {
        const out = encodeIncomingMessage('17000000000000000000000001', body, undefined);
        if (out === undefined) return true;
        assert.ok(Buffer.from(out.toString('utf8'), 'utf8').equals(out), 'valid UTF-8');
        const parsed = JSON.parse(out.toString('utf8')) as { params: { body: unknown } };
        assert.deepEqual(parsed.params.body, JSON.parse(Buffer.from(body).toString('utf8')));
        return true;
      }),
      { runs: 2_000 },
    );
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['client-text', 'token', 'token-garbage', 'incoming-message'].includes(name), name);
  });
});
