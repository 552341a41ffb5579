import { createHmac, randomBytes } from 'node:crypto';

/** The security key every test app is configured with. */
export const TEST_KEY = 'testkey';

export function sign(message: string, key = TEST_KEY, algo = 'sha1'): string {
  return createHmac(algo, key).update(message).digest('hex');
}

export function signRaw(message: string, key = TEST_KEY, algo = 'sha1'): Buffer {
  return createHmac(algo, key).update(message).digest();
}

/** A fresh 32-hex id, so tests sharing a server never share a channel. */
export function newId(): string {
  return randomBytes(16).toString('hex');
}

/** A user as the portal describes it: private id, public id, and the signed tokens. */
export interface TestUser {
  priv: string;
  pub: string;
  /** `priv:pub.sig`, what the client puts first in CHANNEL_ID. */
  token: string;
  /** `pub.sig(public:pub)`, the address other clients publish to. */
  publicAddress: string;
}

export function newUser(key = TEST_KEY): TestUser {
  const priv = newId();
  const pub = newId();
  return {
    priv,
    pub,
    token: `${priv}:${pub}.${sign(`${priv}:${pub}`, key)}`,
    publicAddress: `${pub}.${sign(`public:${pub}`, key)}`,
  };
}

/** A shared channel token `id.sig`. */
export function newShared(key = TEST_KEY): { id: string; token: string } {
  const id = newId();
  return { id, token: `${id}.${sign(id, key)}` };
}

/** The spec's fixed test vector (§2.3). */
export const SPEC = {
  priv: 'c4ca4238a0b923820dcc509a6f75849b',
  pub: '28c8edde3d61a0411511d3b1866f0636',
  shared: '9e81e7b963c71363e2fb3eefcfecfc0e',
  privSig: '4e7e2a27ca7ab489cbd631f2f6dd9309e1cf94b4',
  privPubSig: '41cc810c1b3b9e57db0931df20ba951211375ab8',
  publicSig: 'e339c00159247cdf4083258f5f742baacb209dd8',
  sharedSig: 'a05f3598c892d6534e631fe269233e6757f1e7b8',
  channelId:
    'c4ca4238a0b923820dcc509a6f75849b:28c8edde3d61a0411511d3b1866f0636.41cc810c1b3b9e57db0931df20ba951211375ab8/9e81e7b963c71363e2fb3eefcfecfc0e.a05f3598c892d6534e631fe269233e6757f1e7b8',
} as const;
