import { createHmac } from 'node:crypto';
import { pullTokenChannels, type ChannelIdParser, type ChannelToken } from '../../src/wire/channel-id.ts';
import { TEST_KEY } from './channels.ts';

/** A protocol 5 connection token as the portal's `Bitrix\Pull\Auth\Jwt::create` makes it (HS256). */
export function pullToken(claims: Record<string, unknown>, key = TEST_KEY, header: Record<string, unknown> = { typ: 'JWT', alg: 'HS256' }): string {
  const part = (o: Record<string, unknown>): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${part(header)}.${part(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/** `?hostId=…&signature=…` of a portal's JSON-RPC POST: HMAC-SHA1 of the body with the key (CPullChannel::GetSignature). */
export function backendRpcQuery(body: string, hostId: string, key = TEST_KEY): string {
  return `hostId=${encodeURIComponent(hostId)}&signature=${createHmac('sha1', key).update(body).digest('hex')}`;
}

/** What a subscription with `token=` holds, as the subscription route reads it; null for a refused token. */
export function channelsOf(parser: ChannelIdParser, token: string, nowSec: number): ChannelToken[] | null {
  const pull = parser.readPullToken(token, nowSec);
  return pull === undefined ? null : pullTokenChannels(pull);
}
