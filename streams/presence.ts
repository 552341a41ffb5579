import type { BucketSpec } from './schema.ts';

/**
 * PUSH_PRESENCE: one key per channel (`priv.<id>`, `pub.<id>`), written when a
 * connection holding it opens and on its keep-alives. A channel is online while its
 * key is younger than the bucket's age limit: storage.onlineTtlSec + onlineDeltaSec
 * (120 + 10 s, as Push server 2.0). Keys are not deleted on disconnect: another
 * gateway may still hold the channel, so "online" means "seen within the TTL".
 */
export const PRESENCE_BUCKET = 'PUSH_PRESENCE';

export function presenceBucket(p: { onlineTtlSec: number; onlineDeltaSec: number; replicas: number }): BucketSpec {
  return {
    bucket: PRESENCE_BUCKET,
    description: 'jetpull: channels seen online, by channel key',
    ttlMs: (p.onlineTtlSec + p.onlineDeltaSec) * 1000,
    history: 1,
    replicas: p.replicas,
    storage: 'file',
  };
}
