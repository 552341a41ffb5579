import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { verifyPullToken, type PullToken } from './jwt.ts';

/**
 * CHANNEL_ID parsing and signature checks (spec §2.2–2.4).
 *
 *   CHANNEL_ID = token *( "/" token )
 *   token      = private-id [ ":" public-id ] [ "." signature ]
 *
 * Ids are 32 lowercase hex characters (16 bytes); signatures are lowercase hex
 * HMACs of the configured algorithm. One bad token rejects the whole list.
 */

/** A channel a message can be addressed to: a private id, or a public id. */
export interface Receiver {
  /** 32 lowercase hex characters. */
  readonly id: string;
  readonly isPrivate: boolean;
}

/**
 * `priv.<id>` or `pub.<id>`: the one name of a channel in maps, presence keys and
 * NATS subjects.
 */
export function channelKey(r: Receiver): string {
  return (r.isPrivate ? 'priv.' : 'pub.') + r.id;
}

export interface ChannelToken {
  readonly privateId: string;
  readonly publicId?: string;
}

export interface Signer {
  /** Lowercase hex HMAC of `message` with the first key, or undefined when no key is configured. */
  sign(message: string): string | undefined;
  /** Raw HMAC bytes of `message` with the first key, or undefined when no key is configured. */
  signRaw(message: string): Buffer | undefined;
  /** Constant-time comparison of a hex signature against HMAC(message) under every key. */
  verifyHex(message: string, signatureHex: string): boolean;
  /** Constant-time comparison of raw signature bytes against HMAC(message) under every key. */
  verifyRaw(message: string, signature: Uint8Array): boolean;
  /**
   * Constant-time check of a lowercase hex signature of raw bytes (a request body) or
   * a string under every key; anything but lowercase hex of the HMAC's length is false.
   */
  verifyHexBytes(message: Buffer | string, signatureHex: string): boolean;
  /** Constant-time check of an HMAC-SHA256 of `message` under every key, whatever the configured algorithm (protocol 5's JWTs are HS256). */
  verifySha256(message: string, signature: Uint8Array): boolean;
  /** HMAC-SHA256 of `message` with the first key, or undefined when no key is configured. */
  signSha256(message: string): Buffer | undefined;
  readonly hasKey: boolean;
  /** Keys signatures are checked against: the current one, then the previous ones. */
  readonly keyCount: number;
  /** Hex length of a signature: the HMAC size, or 40 (sha1) without a key. */
  readonly signatureHexLength: number;
}

/**
 * `keys`: the current key first (it signs), then previous ones that still verify, so
 * the portal can change `signature_key` while ids it signed before stay valid.
 */
export function createSigner(keys: string | readonly string[] | undefined, algo: string): Signer {
  const all = keys === undefined ? [] : typeof keys === 'string' ? [keys] : [...keys];
  const hexLength = all.length === 0 ? 40 : createHmac(algo, 'x').update('').digest().length * 2;
  const hmac = (key: string, message: Buffer | string): Buffer => createHmac(algo, key).update(message).digest();
  const raw = (message: string): Buffer | undefined => (all.length === 0 ? undefined : hmac(all[0]!, message));
  const lowerHex = new RegExp(`^[0-9a-f]{${hexLength}}$`);
  // Every key is tried, whichever matches, so the time taken does not tell which one did.
  const verify = (message: Buffer | string, given: Uint8Array): boolean => {
    if (all.length === 0 || given.length * 2 !== hexLength) return false;
    let ok = false;
    for (const key of all) ok = timingSafeEqual(hmac(key, message), given) || ok;
    return ok;
  };
  return {
    hasKey: all.length > 0,
    keyCount: all.length,
    signatureHexLength: hexLength,
    sign: (message) => raw(message)?.toString('hex'),
    signRaw: raw,
    verifyHex: (message, signatureHex) => signatureHex.length === hexLength && verify(message, Buffer.from(signatureHex, 'hex')),
    verifyRaw: verify,
    verifyHexBytes: (message, signatureHex) => lowerHex.test(signatureHex) && verify(message, Buffer.from(signatureHex, 'hex')),
    signSha256: (message) => (all.length === 0 ? undefined : createHmac('sha256', all[0]!).update(message).digest()),
    verifySha256: (message, given) => {
      if (all.length === 0 || given.length !== 32) return false;
      let ok = false;
      for (const key of all) ok = timingSafeEqual(createHmac('sha256', key).update(message).digest(), given) || ok;
      return ok;
    },
  };
}

/**
 * - `subscribe`: subscriptions and untrusted client requests. `priv` needs no key
 *   configured; `priv.sig` needs sig = HMAC(priv) when a key is set.
 * - `trusted`: the backend's /pub/ route. Private-only tokens are not verified.
 * In both, `priv:pub` needs a key and sig = HMAC("priv:pub").
 */
export type VerifyMode = 'subscribe' | 'trusted';

const ID = '[a-f0-9]{32}';

export class ChannelIdParser {
  private readonly tokenPattern: RegExp;

  constructor(private readonly signer: Signer) {
    this.tokenPattern = new RegExp(`^(${ID})(?::(${ID}))?(?:\\.([a-f0-9]{${signer.signatureHexLength}}))?$`);
  }

  /**
   * Parses a CHANNEL_ID value. Returns the tokens with duplicates removed, or null
   * when the value is absent, repeated (an array), empty, or any token is invalid.
   */
  parse(value: string | readonly string[] | undefined | null, mode: VerifyMode): ChannelToken[] | null {
    if (typeof value !== 'string' || value.length === 0) return null;
    const tokens: ChannelToken[] = [];
    const seen = new Set<string>();
    for (const raw of value.split('/')) {
      const token = this.parseToken(raw, mode);
      if (token === null) return null;
      const key = token.publicId === undefined ? token.privateId : `${token.privateId}:${token.publicId}`;
      if (!seen.has(key)) {
        seen.add(key);
        tokens.push(token);
      }
    }
    return tokens;
  }

  /** The claims of a protocol 5 `token=<jwt>` valid now (jwt.ts), or undefined; pullTokenChannels names its channels. */
  readPullToken(value: string | readonly string[] | undefined | null, nowSec = Math.floor(Date.now() / 1000)): PullToken | undefined {
    if (typeof value !== 'string' || value.length === 0) return undefined;
    return verifyPullToken(value, this.signer.verifySha256, nowSec);
  }

  private parseToken(raw: string, mode: VerifyMode): ChannelToken | null {
    const m = this.tokenPattern.exec(raw);
    if (m === null) return null;
    const privateId = m[1]!;
    const publicId = m[2];
    const signature = m[3];
    if (publicId !== undefined) {
      if (signature === undefined || !this.signer.hasKey) return null;
      return this.signer.verifyHex(`${privateId}:${publicId}`, signature) ? { privateId, publicId } : null;
    }
    if (mode === 'trusted' || !this.signer.hasKey) return { privateId };
    if (signature === undefined) return null;
    return this.signer.verifyHex(privateId, signature) ? { privateId } : null;
  }
}

/**
 * The channel a protocol 5 portal's user is addressed by: the portal publishes to user
 * ids (`userList`) and the user connects with a token naming its id, so both sides
 * derive the same private id from the portal's host id and the user id. A digest, so
 * channel ids in stream subjects do not tell user ids.
 */
export function userChannelId(hostId: string, userId: string): string {
  return createHash('sha256').update(`user:${hostId}:${userId}`).digest('hex').slice(0, 32);
}

/** What a token's connection holds: its channels, then its user's channel. */
export function pullTokenChannels(token: PullToken): ChannelToken[] {
  const ids = [...token.channelIds];
  if (token.userId !== undefined) ids.push(userChannelId(token.hostId, token.userId));
  return [...new Set(ids)].map((privateId) => ({ privateId }));
}

/** Every receiver a subscription holds: each private id, then each public id. Unique. */
export function receiversOf(tokens: readonly ChannelToken[]): Receiver[] {
  const out: Receiver[] = [];
  const seen = new Set<string>();
  const add = (id: string, isPrivate: boolean): void => {
    const r = { id, isPrivate };
    const key = channelKey(r);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(r);
    }
  };
  for (const t of tokens) add(t.privateId, true);
  for (const t of tokens) if (t.publicId !== undefined) add(t.publicId, false);
  return out;
}

/** The connection's identity for client publishing: the first public id (spec §2.4). */
export function firstPublicId(tokens: readonly ChannelToken[]): string | undefined {
  return tokens.find((t) => t.publicId !== undefined)?.publicId;
}
