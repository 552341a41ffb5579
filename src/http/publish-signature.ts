import type { Signer } from '../wire/channel-id.ts';
import { single } from './request.ts';

/**
 * security.signedPublishing (Push server 2.0 cloud mode, spec §2.6): a request to the
 * pub route carries `signature=<lowercase hex HMAC>` of what it asks for, with the
 * portal's key. Network isolation of the trusted listener stays the first line; this
 * one holds when that listener is reachable by more than the portal. A signature
 * binds the body, not the time: a recorded request can be sent again (stored once
 * only if it carries an Idempotency-Key).
 */
export type SignedPublishing = 'off' | 'required';

export class PublishSignature {
  constructor(
    private readonly mode: SignedPublishing,
    private readonly signer: Signer,
  ) {}

  get required(): boolean {
    return this.mode === 'required';
  }

  /** POST (text or binaryMode): the signature is of the raw body, byte for byte. */
  acceptsBody(query: URLSearchParams, body: Buffer): boolean {
    return !this.required || this.verify(query, body);
  }

  /**
   * GET channel stats: the signature is of the CHANNEL_ID value as decoded from the
   * query (what the pull module signs), the empty string when there is none. A
   * repeated CHANNEL_ID has no one value to match.
   */
  acceptsChannelStats(query: URLSearchParams): boolean {
    if (!this.required) return true;
    const channels = single(query, 'CHANNEL_ID');
    if (Array.isArray(channels)) return false;
    return this.verify(query, channels ?? '');
  }

  private verify(query: URLSearchParams, signed: Buffer | string): boolean {
    const signature = single(query, 'signature');
    return typeof signature === 'string' && this.signer.verifyHexBytes(signed, signature);
  }
}
