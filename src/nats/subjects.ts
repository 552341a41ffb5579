/**
 * Every subject jetpull uses is built and parsed here.
 *
 *   push.msg.<kind>.<id>    stored messages (stream PUSH_MESSAGES), kind = priv | pub
 *   push.live.<kind>.<id>   the server's republish of each stored message
 *   $JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.<stream>   the stream's leader changed
 *
 * A channel key `<kind>.<id>` (`channelKey` in wire/channel-id.ts) names a channel
 * everywhere in the process.
 */

export const STORED_PREFIX = 'push.msg.';
export const LIVE_PREFIX = 'push.live.';

/** Queue group of the native publish API: requests spread over every publisher. */
export const PUBLISH_QUEUE_GROUP = 'jetpull-publishers';

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

export function leaderElectedSubject(stream: string): string {
  return `$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.${stream}`;
}
