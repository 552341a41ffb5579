import { z } from 'zod';

/**
 * Declarative JetStream resources. Durations are milliseconds and sizes bytes here;
 * `src/nats/ensure-streams.ts` converts them to the server's units when it applies them.
 */

export const StreamSpecSchema = z.strictObject({
  name: z.string().regex(/^[A-Z0-9_]+$/, 'stream names are UPPER_SNAKE'),
  description: z.string(),
  subjects: z.array(z.string().min(1)).min(1),
  storage: z.enum(['file', 'memory']),
  maxAgeMs: z.number().int().positive(),
  maxBytes: z.number().int().min(-1),
  maxMsgSizeBytes: z.number().int().min(-1),
  duplicateWindowMs: z.number().int().positive(),
  replicas: z.number().int().min(1).max(5),
  discard: z.enum(['old', 'new']),
  allowDirect: z.boolean(),
  /** Per-message TTL (`Nats-TTL` header, nats-server 2.11+); older servers ignore the field. */
  allowMsgTtl: z.boolean(),
  /** Atomic batch publish (`Nats-Batch-*` headers, nats-server 2.12+); sent only to servers that know it. */
  allowAtomic: z.boolean(),
  republish: z.strictObject({ src: z.string(), dest: z.string() }).optional(),
});
export type StreamSpec = z.infer<typeof StreamSpecSchema>;

export const BucketSpecSchema = z.strictObject({
  bucket: z.string().regex(/^[A-Za-z0-9_-]+$/),
  description: z.string(),
  ttlMs: z.number().int().positive(),
  history: z.number().int().min(1).max(64),
  replicas: z.number().int().min(1).max(5),
  storage: z.enum(['file', 'memory']),
});
export type BucketSpec = z.infer<typeof BucketSpecSchema>;

export interface Declarations {
  readonly streams: readonly StreamSpec[];
  readonly buckets: readonly BucketSpec[];
}
