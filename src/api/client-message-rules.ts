import type { Config } from '../config/schema.ts';
import { ProtocolError } from '../errors/app-error.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { IncomingMessagePb } from '../wire/protobuf.ts';

/** Why a client request was refused, for the log line (the client only sees the protocol code). */
export type ClientRefusal = 'too-many-copies' | 'body-too-large' | 'body-not-json' | 'body-not-an-event';

export type ClientLimits = Pick<Config['limits'], 'maxClientMessageBytes' | 'maxClientCopiesPerRequest' | 'maxClientExpirySec'>;

/**
 * What an untrusted client may publish, checked before anything is stored:
 * - the copies the request would store (receivers summed over its messages) stay
 *   within maxClientCopiesPerRequest (4018), counted before any signature is checked;
 * - every body is what the official client sends, JSON.stringify of
 *   {module_id, command, params} (official-client.md §5.5), at most
 *   maxClientMessageBytes (4013). A receiving client dispatches on `module_id` and
 *   drops (or throws on) anything else, and a text-mode long poll that gets an
 *   unreadable body forgets its resume point.
 */
export function checkClientCopies(messages: readonly IncomingMessagePb[], limits: ClientLimits): void {
  let copies = 0;
  for (const m of messages) copies += m.receivers?.length ?? 0;
  if (copies > limits.maxClientCopiesPerRequest) throw new ProtocolError(CloseCode.TooManyChannels, 'too-many-copies' satisfies ClientRefusal);
}

export function checkClientBody(body: string, limits: ClientLimits): void {
  if (Buffer.byteLength(body, 'utf8') > limits.maxClientMessageBytes) throw new ProtocolError(CloseCode.WrongRequestData, 'body-too-large' satisfies ClientRefusal);
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new ProtocolError(CloseCode.WrongRequestData, 'body-not-json' satisfies ClientRefusal);
  }
  if (!isEvent(value)) throw new ProtocolError(CloseCode.WrongRequestData, 'body-not-an-event' satisfies ClientRefusal);
}

/** A client's expiry: at most maxClientExpirySec, and never past the replay window. */
export function clientExpiryCap(limits: ClientLimits, messageTtlSec: number): number {
  return Math.min(limits.maxClientExpirySec, messageTtlSec);
}

function isEvent(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  return typeof o.module_id === 'string' && typeof o.command === 'string';
}
