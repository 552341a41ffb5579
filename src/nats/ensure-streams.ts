import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BucketSpec, Declarations, StreamSpec } from '../../streams/schema.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Applies streams/ at start: creates what is missing, updates fields that can change
 * in place, and refuses to start when an existing stream differs in a field that
 * cannot (naming the field). After every write it checks what the server echoed back:
 * older servers drop fields they do not know without an error.
 */

export class StreamDriftError extends Error {
  constructor(readonly stream: string, readonly field: string, readonly wanted: unknown, readonly found: unknown) {
    super(
      `stream ${stream}: field "${field}" is ${JSON.stringify(found)} on the server but ${JSON.stringify(wanted)} is declared; ` +
        'it cannot be changed in place (delete the stream or change the declaration)',
    );
    this.name = 'StreamDriftError';
  }
}

export class StreamFeatureError extends Error {
  constructor(readonly stream: string, readonly field: string, options?: ErrorOptions) {
    super(`stream ${stream}: the NATS server ignored "${field}"; jetpull needs nats-server 2.9 or newer`, options);
    this.name = 'StreamFeatureError';
  }
}

export interface EnsuredStream {
  readonly spec: StreamSpec;
  readonly info: StreamInfo;
  /** Creation time in unix seconds: the epoch of message ids. */
  readonly createdSec: number;
  /** Messages may carry their own TTL: the server kept `allow_msg_ttl`. */
  readonly perMessageTtl: boolean;
  /** Publishes may be atomic batches: the server kept `allow_atomic` on a replicated stream. */
  readonly atomicBatch: boolean;
}

const nanos = (ms: number): number => ms * 1_000_000;

export function toStreamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    subjects: [...spec.subjects],
    retention: RetentionPolicy.Limits,
    storage: spec.storage === 'file' ? StorageType.File : StorageType.Memory,
    max_age: nanos(spec.maxAgeMs),
    max_bytes: spec.maxBytes,
    max_msg_size: spec.maxMsgSizeBytes,
    duplicate_window: nanos(spec.duplicateWindowMs),
    num_replicas: spec.replicas,
    discard: spec.discard === 'old' ? DiscardPolicy.Old : DiscardPolicy.New,
    allow_direct: spec.allowDirect,
    ...(spec.allowMsgTtl ? { allow_msg_ttl: true } : {}),
    // Sent only when declared: a server before 2.12 does not know the field.
    ...(spec.allowAtomic ? { allow_atomic: true } : {}),
    ...(spec.republish ? { republish: { src: spec.republish.src, dest: spec.republish.dest } } : {}),
  };
}

/** Fields that cannot change on an existing stream. */
const FIXED_FIELDS = ['storage', 'retention'] as const;
/** Fields compared to decide whether an update is needed. */
const COMPARED_FIELDS = [
  'description', 'subjects', 'max_age', 'max_bytes', 'max_msg_size', 'duplicate_window',
  'num_replicas', 'discard', 'allow_direct', 'republish', 'allow_msg_ttl', 'allow_atomic',
] as const;

/**
 * `updateExisting` false: a stream that exists is left as it is, differences only
 * logged. Processes with other settings (BitrixVM's sub and pub config files differ in
 * their TTLs) would otherwise rewrite the stream back and forth on every start: the
 * publishing processes own it.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec, log: Logger, updateExisting = true): Promise<EnsuredStream> {
  const wanted = toStreamConfig(spec);
  let info = await streamInfo(jsm, spec.name);
  if (info === null) {
    info = await jsm.streams.add(wanted);
    log.info({ stream: spec.name }, 'stream created');
  } else {
    for (const field of FIXED_FIELDS) {
      if (info.config[field] !== wanted[field]) throw new StreamDriftError(spec.name, field, wanted[field], info.config[field]);
    }
    const changed = COMPARED_FIELDS.filter((f) => !sameValue(info!.config[f], wanted[f]));
    if (changed.length > 0 && updateExisting) {
      info = await jsm.streams.update(spec.name, wanted);
      log.info({ stream: spec.name, fields: changed }, 'stream updated');
    } else if (changed.length > 0) {
      log.info({ stream: spec.name, fields: changed }, 'stream settings differ from this process\'s; left to the publishing processes');
    }
  }
  checkEcho(spec.name, wanted, info);
  const perMessageTtl = info.config.allow_msg_ttl === true;
  if (spec.allowMsgTtl && !perMessageTtl) log.warn({ stream: spec.name }, 'the server ignored allow_msg_ttl; messages keep the stream age limit');
  // What the server echoes decides: a stream left as it was (a gateway) may differ either way.
  const atomicBatch = info.config.allow_atomic === true && info.config.num_replicas > 1;
  if (spec.allowAtomic && !atomicBatch) log.warn({ stream: spec.name }, 'the stream does not allow atomic batches; publishes to several receivers are written one copy at a time');
  return { spec, info, createdSec: Math.floor(Date.parse(info.created) / 1000), perMessageTtl, atomicBatch };
}

/**
 * Creates a KV bucket, or brings an existing one's age limit and replicas in line
 * with the declaration (the bucket's other settings belong to the KV layer).
 */
export async function ensureBucket(nc: NatsConnection, jsm: JetStreamManager, spec: BucketSpec, log: Logger, updateExisting = true): Promise<void> {
  const streamName = `KV_${spec.bucket}`;
  const info = await streamInfo(jsm, streamName);
  if (info === null) {
    await new Kvm(nc).create(spec.bucket, {
      description: spec.description,
      ttl: spec.ttlMs,
      history: spec.history,
      replicas: spec.replicas,
      storage: spec.storage === 'file' ? StorageType.File : StorageType.Memory,
    });
    log.info({ bucket: spec.bucket }, 'bucket created');
    return;
  }
  const wantedStorage = spec.storage === 'file' ? StorageType.File : StorageType.Memory;
  if (info.config.storage !== wantedStorage) throw new StreamDriftError(streamName, 'storage', wantedStorage, info.config.storage);
  const maxAge = nanos(spec.ttlMs);
  if (updateExisting && (info.config.max_age !== maxAge || info.config.num_replicas !== spec.replicas)) {
    const duplicateWindow = Math.min(info.config.duplicate_window, maxAge);
    await jsm.streams.update(streamName, { ...info.config, max_age: maxAge, duplicate_window: duplicateWindow, num_replicas: spec.replicas });
    log.info({ bucket: spec.bucket, fields: ['max_age', 'num_replicas'] }, 'bucket updated');
  }
}

export async function ensureAll(
  nc: NatsConnection,
  jsm: JetStreamManager,
  decl: Declarations,
  log: Logger,
  updateExisting = true,
): Promise<Map<string, EnsuredStream>> {
  const out = new Map<string, EnsuredStream>();
  for (const spec of decl.streams) out.set(spec.name, await ensureStream(jsm, spec, log, updateExisting));
  for (const bucket of decl.buckets) await ensureBucket(nc, jsm, bucket, log, updateExisting);
  return out;
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return null;
    throw err;
  }
}

function checkEcho(stream: string, wanted: Partial<StreamConfig>, info: StreamInfo): void {
  if (wanted.republish && !info.config.republish) throw new StreamFeatureError(stream, 'republish');
  if (wanted.allow_direct && !info.config.allow_direct) throw new StreamFeatureError(stream, 'allow_direct');
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined && (a as Record<string, unknown>)[k] !== false);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined && (b as Record<string, unknown>)[k] !== false);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
