import type { StreamSpec } from './schema.ts';

/**
 * PUSH_MESSAGES holds every published message, one subject per receiver:
 * `push.msg.priv.<id>` and `push.msg.pub.<id>`. Its age limit is the replay
 * window (storage.messageTtlSec). Each stored message is republished by the server
 * to `push.live.<kind>.<id>`, which gateways subscribe to for the channels they
 * hold: only stored messages go live, so a deduplicated retry is never delivered
 * twice, and the republish headers carry the stream sequence (the mid) and the
 * channel's previous sequence (gap detection).
 *
 * On servers with per-message TTL (2.11+) each message may carry its own shorter
 * lifetime: live-only messages leave after storage.liveOnlyTtlSec and short expiries
 * are honoured by the server, instead of everything staying for the whole window.
 *
 * On servers with atomic batch publish (2.12+) a replicated stream takes the copies of
 * a publish to several receivers together or not at all, with one acknowledgement.
 * A single-replica stream does not: there the server stages every batch in a file
 * store of its own, ~18x slower than writing the copies one at a time (measured on
 * 2.15.1, BENCHMARKS.md).
 *
 * File storage: memory storage with republish slowed down as the stream grew.
 * No per-subject limit: `max_msgs_per_subject` made writes ~20x slower; replay
 * caps what it reads instead.
 */
export interface MessageStreamParams {
  messageTtlSec: number;
  duplicateWindowMs: number;
  replicas: number;
  maxBytes: number;
  maxPayloadBytes: number;
  /** The server supports per-message TTL (nats-server 2.11 or newer). */
  perMessageTtl: boolean;
  /** Atomic batch publish: nats-server 2.12 or newer and a replicated stream. */
  atomicBatch: boolean;
}

export const MESSAGE_STREAM = 'PUSH_MESSAGES';

export function messageStream(p: MessageStreamParams): StreamSpec {
  return {
    name: MESSAGE_STREAM,
    description: 'jetpull: published messages by receiver, kept for replay',
    subjects: ['push.msg.>'],
    storage: 'file',
    maxAgeMs: p.messageTtlSec * 1000,
    maxBytes: p.maxBytes,
    // Body plus headers (publish id, expiry, sender, first copy).
    maxMsgSizeBytes: p.maxPayloadBytes + 4096,
    duplicateWindowMs: Math.min(p.duplicateWindowMs, p.messageTtlSec * 1000),
    replicas: p.replicas,
    discard: 'old',
    allowDirect: true,
    allowMsgTtl: p.perMessageTtl,
    allowAtomic: p.atomicBatch,
    republish: { src: 'push.msg.>', dest: 'push.live.>' },
  };
}
