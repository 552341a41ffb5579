import type { BucketSpec } from './schema.ts';

/**
 * PUSH_STATS: one key per running jetpull process, its server-stat object (spec
 * §5.5) rewritten every few seconds. A process that stops is gone from the list once
 * its key is older than the age limit.
 */
export const STATS_BUCKET = 'PUSH_STATS';
export const STATS_REPORT_INTERVAL_MS = 2_000;

export function statsBucket(p: { replicas: number }): BucketSpec {
  return {
    bucket: STATS_BUCKET,
    description: 'jetpull: server statistics, by process',
    ttlMs: STATS_REPORT_INTERVAL_MS * 5,
    history: 1,
    replicas: p.replicas,
    storage: 'file',
  };
}
