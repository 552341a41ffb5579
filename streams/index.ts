import { BucketSpecSchema, StreamSpecSchema, type Declarations } from './schema.ts';
import { messageStream, type MessageStreamParams } from './messages.ts';

export type StreamParams = MessageStreamParams;
export { MESSAGE_STREAM } from './messages.ts';

/** The only list of JetStream resources the application applies, validated. */
export function declarations(params: StreamParams): Declarations {
  const streams = [messageStream(params)].map((s) => StreamSpecSchema.parse(s));
  const buckets = ([] as unknown[]).map((b) => BucketSpecSchema.parse(b));
  return { streams, buckets };
}
