/**
 * Protocol 5's connection token (`token=<jwt>`, official-client.md §3): the portal's
 * `Bitrix\Pull\Auth\Jwt`, HS256 signed with the signature key, claims `iss` (the
 * portal's host id), `iat`, `exp` (12 h later), `sub` (the user id, when the
 * connection is a user's) and `chan` (channel ids, comma separated).
 */
export interface PullToken {
  readonly hostId: string;
  readonly userId: string | undefined;
  readonly channelIds: readonly string[];
  readonly expiresSec: number;
}

const HEADER = /^[A-Za-z0-9_-]+$/;
const CHANNEL_ID = /^[0-9a-f]{32}$/;
const USER_ID = /^[1-9][0-9]{0,18}$/;

/**
 * The token's claims when `verifySha256` (HMAC-SHA256 under the signature keys,
 * Signer.verifySha256) accepts its signature, it is not expired at `nowSec`, and it
 * names a user or at least one channel; undefined for anything else, forged or malformed.
 */
export function verifyPullToken(token: string, verifySha256: (message: string, signature: Uint8Array) => boolean, nowSec: number): PullToken | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((p) => HEADER.test(p))) return undefined;
  const [header, payload, signature] = parts as [string, string, string];
  if (!verifySha256(`${header}.${payload}`, Buffer.from(signature, 'base64url'))) return undefined;
  const head = parseJson(header);
  if (head?.alg !== 'HS256') return undefined;
  const claims = parseJson(payload);
  if (claims === undefined) return undefined;
  const { iss, sub, chan, exp } = claims;
  if (typeof iss !== 'string' || iss === '' || typeof exp !== 'number' || exp <= nowSec) return undefined;
  const userId = sub === undefined ? undefined : String(sub);
  if (userId !== undefined && !isUserId(userId)) return undefined;
  const channelIds = chan === undefined || chan === '' ? [] : typeof chan === 'string' ? chan.split(',') : undefined;
  if (channelIds === undefined || !channelIds.every((c) => CHANNEL_ID.test(c))) return undefined;
  if (userId === undefined && channelIds.length === 0) return undefined;
  return { hostId: iss, userId, channelIds, expiresSec: exp };
}

/**
 * A token as the portal's `Bitrix\Pull\Auth\Jwt::create` makes it: `{"typ":"JWT","alg":"HS256"}`,
 * claims iss, iat, exp, sub (when a user), chan (when channels), signed with `hmacSha256`.
 */
export function encodePullToken(t: { hostId: string; userId?: string | undefined; channelIds: readonly string[]; nowSec: number; ttlSec: number }, hmacSha256: (message: string) => Buffer): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url');
  const claims = {
    iss: t.hostId,
    iat: t.nowSec,
    exp: t.nowSec + t.ttlSec,
    ...(t.userId === undefined ? {} : { sub: t.userId }),
    ...(t.channelIds.length === 0 ? {} : { chan: t.channelIds.join(',') }),
  };
  const signed = `${part({ typ: 'JWT', alg: 'HS256' })}.${part(claims)}`;
  return `${signed}.${hmacSha256(signed).toString('base64url')}`;
}

/** The portal's token lifetime (Jwt::TTL). */
export const PULL_TOKEN_TTL_SEC = 12 * 3600;

/** A portal's user id: a positive whole number, as digits. */
export function isUserId(id: string): boolean {
  return USER_ID.test(id);
}

function parseJson(part: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
