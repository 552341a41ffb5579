import type { Receiver } from '../wire/channel-id.ts';

/**
 * Every subject jetpull uses is built and parsed here.
 *
 *   push.msg.<kind>.<id>    stored messages (stream PUSH_MESSAGES), kind = priv | pub
 *   push.live.<kind>.<id>   the server's republish of each stored message
 *
 * A receiver's key `<kind>.<id>` names a channel everywhere in the process.
 */

export const STORED_PREFIX = 'push.msg.';
export const LIVE_PREFIX = 'push.live.';

/** `priv.<id>` or `pub.<id>`: the channel key used in maps and subjects. */
export function channelKey(r: Receiver): string {
  return (r.isPrivate ? 'priv.' : 'pub.') + r.id;
}

export function receiverOfKey(key: string): Receiver {
  return key.startsWith('priv.') ? { id: key.slice(5), isPrivate: true } : { id: key.slice(4), isPrivate: false };
}

export function storedSubject(key: string): string {
  return STORED_PREFIX + key;
}

export function liveSubject(key: string): string {
  return LIVE_PREFIX + key;
}

/** The channel key of a stored subject (`push.msg.priv.<id>` → `priv.<id>`). */
export function keyOfStoredSubject(subject: string): string {
  return subject.slice(STORED_PREFIX.length);
}
