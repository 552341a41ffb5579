import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

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
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, bucket: string): Promise<KvStore> {
    return new KvStore(await new Kvm(nc).open(bucket));
  }

  async put(key: string, value: string): Promise<void> {
    await this.kv.put(key, value);
  }

  async get(key: string): Promise<KvEntry | null> {
    const e = await this.kv.get(key);
    if (e === null || e.operation !== 'PUT') return null;
    return { value: e.string(), createdMs: e.created.getTime() };
  }

  async keys(): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys()) out.push(k);
    return out;
  }

  async delete(key: string): Promise<void> {
    await this.kv.delete(key);
  }
}
