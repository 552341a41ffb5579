import { BucketSpecSchema, StreamSpecSchema, type Declarations } from './schema.ts';
import { messageStream, type MessageStreamParams } from './messages.ts';
import { presenceBucket } from './presence.ts';
import { statsBucket } from './stats.ts';

export interface StreamParams extends MessageStreamParams {
  onlineTtlSec: number;
  onlineDeltaSec: number;
}

export { MESSAGE_STREAM } from './messages.ts';
export { PRESENCE_BUCKET } from './presence.ts';
export { STATS_BUCKET, STATS_REPORT_INTERVAL_MS } from './stats.ts';

/** The only list of JetStream resources the application applies, validated. */
export function declarations(params: StreamParams): Declarations {
  const streams = [messageStream(params)].map((s) => StreamSpecSchema.parse(s));
  const buckets = [presenceBucket(params), statsBucket(params)].map((b) => BucketSpecSchema.parse(b));
  return { streams, buckets };
}
