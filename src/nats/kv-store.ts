import { Bucket, Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamAppender } from './jetstream-appender.ts';

/** Where puts go instead of a request each, and how long one waits for its acknowledgement. */
export interface KvWrites {
  readonly appender: JetStreamAppender;
  readonly timeoutMs: number;
}

/** A value and when it was written. */
export interface KvEntry {
  readonly value: string;
  readonly createdMs: number;
}

/**
 * One JetStream KV bucket in domain terms: text values, and entries with their write
 * time (the buckets' age limit decides what is still true). Deleted keys read as absent.
 */
export class KvStore {
  private constructor(
    private readonly kv: KV,
    private readonly writes: KvWrites | undefined,
  ) {}

  /**
   * With an appender, puts go through it (one acknowledgement inbox, the writes of an
   * event-loop turn in one socket write) instead of a request each: presence writes
   * one key per new channel, so a reconnect wave is a put per handshake.
   */
  static async open(nc: NatsConnection, bucket: string, writes?: KvWrites): Promise<KvStore> {
    return new KvStore(await new Kvm(nc).open(bucket), writes);
  }

  async put(key: string, value: string): Promise<void> {
    const kv = this.kv;
    if (this.writes === undefined || !(kv instanceof Bucket)) {
      await kv.put(key, value);
      return;
    }
    const encoded = kv.encodeKey(key);
    kv.validateKey(encoded);
    await this.writes.appender.put(kv.subjectForKey(encoded, true), Buffer.from(value), this.writes.timeoutMs);
  }

  async get(key: string): Promise<KvEntry | null> {
    const e = await this.kv.get(key);
    if (e === null || e.operation !== 'PUT') return null;
    return { value: e.string(), createdMs: e.created.getTime() };
  }

  /**
   * The bucket's keys, deleted ones included (their delete marker is a message), from
   * one stream-info request. nats.js's own listing is a consumer the server drives,
   * which ends only when its last message or a heartbeat arrives: a request has a
   * timeout, and leaves nothing running when it is abandoned.
   */
  async keys(): Promise<string[]> {
    const kv = this.kv as Bucket;
    const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: `${kv.prefix}.>` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => kv.decodeKey(subject.substring(kv.prefixLen)));
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(key);
  }
}
