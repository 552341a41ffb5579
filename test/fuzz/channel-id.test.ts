import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChannelIdParser, createSigner, type ChannelToken, type VerifyMode } from '../../src/wire/channel-id.ts';
import { corpusProperties, fuzz } from '../helpers/fuzz.ts';

/**
 * CHANNEL_ID parsing and signatures (spec §2.2–2.4) against a statement of the rules
 * written here from the spec: whatever the string, parse answers a token list or null
 * (the caller's 4010) and nothing else; signed lists round-trip; a flipped bit in a
 * signature or an id is refused where the mode verifies it.
 */

const SUITE = 'channel-id';
const KEY = 'fuzzkey';
const ALGOS = ['sha1', 'sha256'] as const;
const MODES: VerifyMode[] = ['subscribe', 'trusted'];

const hmac = (algo: string, message: string): string => createHmac(algo, KEY).update(message).digest('hex');

const HEX = '0123456789abcdef';
const hexChar = fc.constantFrom(...HEX);
const id = fc.string({ unit: hexChar, minLength: 32, maxLength: 32 });

/** One token as the spec describes its parts, each part right or wrong in one of the ways that matter. */
interface TokenSpec {
  priv: string;
  pub: string | undefined;
  sig: 'none' | 'right' | 'flipped' | 'other-length' | 'uppercase' | 'random';
  /** Flip one bit of this byte of the signature (for `flipped`), or of the id it signs. */
  flipByte: number;
  flipBit: number;
  random: string;
}

const tokenSpec = (sigLength: number): fc.Arbitrary<TokenSpec> =>
  fc.record({
    priv: id,
    pub: fc.option(id, { nil: undefined }),
    sig: fc.constantFrom('none', 'right', 'flipped', 'other-length', 'uppercase', 'random'),
    flipByte: fc.nat({ max: sigLength / 2 - 1 }),
    flipBit: fc.nat({ max: 7 }),
    random: fc.string({ unit: hexChar, minLength: sigLength, maxLength: sigLength }),
  });

function flipBit(hex: string, byte: number, bit: number): string {
  const b = Buffer.from(hex, 'hex');
  b[byte]! ^= 1 << bit;
  return b.toString('hex');
}

function render(t: TokenSpec, algo: string, signed: boolean): string {
  const message = t.pub === undefined ? t.priv : `${t.priv}:${t.pub}`;
  const right = signed ? hmac(algo, message) : t.random;
  let sig: string | undefined;
  switch (t.sig) {
    case 'none':
      sig = undefined;
      break;
    case 'right':
      sig = right;
      break;
    case 'flipped':
      sig = flipBit(right, t.flipByte, t.flipBit);
      break;
    case 'other-length':
      sig = right.slice(0, -2);
      break;
    case 'uppercase':
      sig = `${right.slice(0, -1)}${right.slice(-1) === 'f' ? 'F' : 'A'}`;
      break;
    case 'random':
      sig = t.random;
      break;
  }
  return sig === undefined ? message : `${message}.${sig}`;
}

/** Spec §2.4, stated independently of the parser: is this token accepted? */
function accepted(t: TokenSpec, algo: string, hasKey: boolean, mode: VerifyMode): boolean {
  if (t.sig === 'other-length' || t.sig === 'uppercase') return false; // fails the syntax
  const message = t.pub === undefined ? t.priv : `${t.priv}:${t.pub}`;
  const sigMatches =
    hasKey &&
    (t.sig === 'right' || (t.sig === 'random' && t.random === hmac(algo, message)));
  if (t.pub !== undefined) return t.sig !== 'none' && sigMatches; // always verified, needs a key
  if (mode === 'trusted' || !hasKey) return true;
  return t.sig !== 'none' && sigMatches;
}

/** The tokens a list must parse into: in order, the first of each key kept. */
function expectedTokens(specs: TokenSpec[]): ChannelToken[] {
  const out: ChannelToken[] = [];
  const seen = new Set<string>();
  for (const t of specs) {
    const key = t.pub === undefined ? t.priv : `${t.priv}:${t.pub}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(t.pub === undefined ? { privateId: t.priv } : { privateId: t.priv, publicId: t.pub });
  }
  return out;
}

/** Any string, leaning on the characters CHANNEL_ID is built from. */
const anyChannelId = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...HEX, ...'ABCDEF:./%-_ \u0000'), maxLength: 300 }),
  fc.array(fc.oneof(id, fc.string({ unit: hexChar, maxLength: 70 })), { maxLength: 6 }).chain((parts) =>
    fc.array(fc.constantFrom(':', '.', '/', '//', ''), { minLength: parts.length, maxLength: parts.length }).map((seps) =>
      parts.map((p, i) => p + seps[i]).join(''),
    ),
  ),
);

describe('channel id parser (property)', () => {
  for (const algo of ALGOS) {
    for (const hasKey of [true, false]) {
      const signer = createSigner(hasKey ? KEY : undefined, algo);
      const parser = new ChannelIdParser(signer);
      const where = `${algo}, ${hasKey ? 'with' : 'without'} a key`;

      it(`never throws; answers null or well-formed tokens (${where})`, async () => {
        await fuzz(
          SUITE,
          'never-throws',
          fc.property(
            fc.oneof(anyChannelId, fc.array(anyChannelId, { maxLength: 3 }), fc.constant(null), fc.constant(undefined)),
            fc.constantFrom(...MODES),
            (value, mode) => {
              const tokens = parser.parse(value, mode);
              if (tokens === null) return true;
              assert.equal(typeof value, 'string');
              assert.ok(tokens.length > 0);
              for (const t of tokens) {
                assert.match(t.privateId, /^[a-f0-9]{32}$/);
                if (t.publicId !== undefined) assert.match(t.publicId, /^[a-f0-9]{32}$/);
              }
              return true;
            },
          ),
          { runs: 1500 },
        );
      });

      it(`accepts a list exactly when every token follows spec §2.4, and returns its tokens (${where})`, async () => {
        const sigLength = signer.signatureHexLength;
        await fuzz(
          SUITE,
          'rules',
          fc.property(fc.array(tokenSpec(sigLength), { minLength: 1, maxLength: 6 }), fc.constantFrom(...MODES), (specs, mode) => {
            const value = specs.map((t) => render(t, algo, hasKey)).join('/');
            const expected = specs.every((t) => accepted(t, algo, hasKey, mode)) ? expectedTokens(specs) : null;
            assert.deepEqual(parser.parse(value, mode), expected, value);
            return true;
          }),
          { runs: 1500 },
        );
      });
    }

    const signer = createSigner(KEY, algo);
    const parser = new ChannelIdParser(signer);

    it(`signed lists round-trip in both modes (${algo})`, async () => {
      await fuzz(
        SUITE,
        'round-trip',
        fc.property(
          fc.array(fc.record({ priv: id, pub: fc.option(id, { nil: undefined }) }), { minLength: 1, maxLength: 8 }),
          fc.constantFrom(...MODES),
          (tokens, mode) => {
            const value = tokens
              .map((t) => (t.pub === undefined ? `${t.priv}.${signer.sign(t.priv)}` : `${t.priv}:${t.pub}.${signer.sign(`${t.priv}:${t.pub}`)}`))
              .join('/');
            const specs = tokens.map((t) => ({ ...t, sig: 'right' as const, flipByte: 0, flipBit: 0, random: '' }));
            assert.deepEqual(parser.parse(value, mode), expectedTokens(specs));
            return true;
          },
        ),
        { runs: 500 },
      );
    });

    it(`a flipped bit in a signature, or in the id it signs, is refused wherever the token is verified (${algo})`, async () => {
      const bytes = signer.signatureHexLength / 2;
      await fuzz(
        SUITE,
        'flipped-bit',
        fc.property(
          id,
          fc.option(id, { nil: undefined }),
          fc.constantFrom('signature', 'private id', 'public id'),
          fc.nat({ max: bytes - 1 }),
          fc.nat({ max: 7 }),
          fc.array(id, { maxLength: 3 }),
          (priv, pub, where, byte, bit, others) => {
            const message = pub === undefined ? priv : `${priv}:${pub}`;
            let sig = signer.sign(message)!;
            let p = priv;
            let q = pub;
            if (where === 'signature') sig = flipBit(sig, byte, bit);
            else if (where === 'private id') p = flipBit(priv, byte % 16, bit);
            else if (q !== undefined) q = flipBit(q, byte % 16, bit);
            else sig = flipBit(sig, byte, bit);
            const tampered = q === undefined ? `${p}.${sig}` : `${p}:${q}.${sig}`;
            // Good tokens around it do not save the list: one bad token rejects all.
            const value = [...others.map((o) => `${o}.${signer.sign(o)}`), tampered].join('/');
            assert.equal(parser.parse(value, 'subscribe'), null, value);
            const trusted = parser.parse(value, 'trusted');
            // The backend's /pub/ does not verify private-only tokens; a public id is always verified.
            if (pub === undefined) assert.deepEqual(trusted?.at(-1), { privateId: p });
            else assert.equal(trusted, null, value);
            return true;
          },
        ),
        { runs: 1000 },
      );
    });
  }

  it('unsigned private ids: accepted by the backend and without a key, refused from clients when a key is set', async () => {
    const keyed = new ChannelIdParser(createSigner(KEY, 'sha1'));
    const keyless = new ChannelIdParser(createSigner(undefined, 'sha1'));
    await fuzz(
      SUITE,
      'modes',
      fc.property(fc.array(id, { minLength: 1, maxLength: 5 }), fc.option(id, { nil: undefined }), (privs, pub) => {
        const value = privs.join('/');
        const tokens = expectedTokens(privs.map((priv) => ({ priv, pub: undefined, sig: 'none', flipByte: 0, flipBit: 0, random: '' })));
        assert.equal(keyed.parse(value, 'subscribe'), null);
        assert.deepEqual(keyed.parse(value, 'trusted'), tokens);
        assert.deepEqual(keyless.parse(value, 'subscribe'), tokens);
        assert.deepEqual(keyless.parse(value, 'trusted'), tokens);
        // A public id needs a key in either mode, whatever signature it carries.
        if (pub !== undefined) {
          const withPub = `${privs[0]}:${pub}.${hmac('sha1', `${privs[0]}:${pub}`)}`;
          assert.equal(keyless.parse(withPub, 'subscribe'), null);
          assert.equal(keyless.parse(withPub, 'trusted'), null);
          assert.deepEqual(keyed.parse(withPub, 'subscribe'), [{ privateId: privs[0], publicId: pub }]);
        }
        return true;
      }),
      { runs: 500 },
    );
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['never-throws', 'rules', 'round-trip', 'flipped-bit', 'modes'].includes(name), name);
  });
});
