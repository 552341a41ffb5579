import { totalmem } from 'node:os';
import { declarations } from '../../streams/index.ts';
import type { Logger } from '../log/logger.ts';
import type { Config } from './schema.ts';

/**
 * Settings derived from the configuration and from what the NATS server supports,
 * decided once at start.
 */

/** Room for jetpull's headers on top of a body, when checking the server's max_payload. */
const HEADER_ALLOWANCE_BYTES = 4096;

/** What the connected NATS server supports, by its release. */
export interface ServerFeatures {
  /** Per-message TTL (nats-server 2.11+). */
  perMessageTtl: boolean;
  /** Atomic batch publish (nats-server 2.12+), asked for on replicated streams. */
  atomicBatch: boolean;
}

/** The JetStream resources this configuration needs (streams/). */
export function streamDeclarations(config: Config, features: ServerFeatures): ReturnType<typeof declarations> {
  return declarations({
    ...features,
    messageTtlSec: config.storage.messageTtlSec,
    duplicateWindowMs: config.storage.duplicateWindowMs,
    replicas: config.storage.streamReplicas,
    maxBytes: config.storage.streamMaxBytes,
    maxPayloadBytes: config.limits.maxPayloadBytes,
    onlineTtlSec: config.storage.onlineTtlSec,
    onlineDeltaSec: config.storage.onlineDeltaSec,
  });
}

/**
 * How long the server keeps a message, on servers with per-message TTL: a live-only
 * message (expiry 0) only as long as gateways may still need it for a catch-up, a
 * message with a short expiry until it expires; the rest for the stream's age limit.
 */
export function ttlPolicy(storage: Config['storage']): (expirySec: number) => number | undefined {
  return (expirySec) => (expirySec === 0 ? storage.liveOnlyTtlSec : expirySec < storage.messageTtlSec ? expirySec : undefined);
}

/**
 * limits.maxPayloadBytes, lowered to what the NATS server stores (its max_payload less
 * room for jetpull's headers): a body over it is answered 413 at once instead of being
 * retried into a 503 it could never leave.
 */
export function effectiveLimits(config: Config, serverMax: number | undefined, log: Logger): Config['limits'] {
  if (serverMax === undefined || config.limits.maxPayloadBytes + HEADER_ALLOWANCE_BYTES <= serverMax) return config.limits;
  const effective = serverMax - HEADER_ALLOWANCE_BYTES;
  log.warn(
    { maxPayloadBytes: config.limits.maxPayloadBytes, serverMaxPayloadBytes: serverMax, effectiveMaxPayloadBytes: effective },
    'nats max_payload is smaller than limits.maxPayloadBytes; the limit is lowered to fit',
  );
  return { ...config.limits, maxPayloadBytes: effective };
}

/** Share of the memory available to one process that gateway.memoryWatermarkBytes defaults to. */
const MEMORY_WATERMARK_SHARE = 0.85;

/**
 * gateway.memoryWatermarkBytes, or when 0: 85 % of what the process may use, the
 * container's limit (cgroup) when it has one, else the machine's RAM, shared by the
 * workers. Unconstrained, `constrainedMemory` answers 0 or 2^64 depending on the
 * Node.js version; either way the RAM is the bound.
 */
export function memoryWatermarkBytes(config: Config, totalMem = totalmem(), constrained = process.constrainedMemory?.() ?? 0): number {
  if (config.gateway.memoryWatermarkBytes > 0) return config.gateway.memoryWatermarkBytes;
  const available = constrained > 0 ? Math.min(constrained, totalMem) : totalMem;
  return Math.floor((available * MEMORY_WATERMARK_SHARE) / config.workers);
}
