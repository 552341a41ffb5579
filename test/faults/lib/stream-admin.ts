import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { sleep } from './time.ts';

/**
 * The suite's own view of JetStream, through the plain JS API on a connection of
 * its own: who leads PUSH_MESSAGES, deleting and recreating it, and reading back
 * what a channel holds (to tell "acknowledged but never stored" from "stored but
 * not delivered").
 */

export const STREAM = 'PUSH_MESSAGES';

export interface StreamInfoReply {
  config?: Record<string, unknown>;
  created?: string;
  state?: { messages: number; first_seq: number; last_seq: number; bytes: number };
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean; lag?: number }> };
  error?: { code: number; description: string };
}

export interface StoredCopy {
  seq: number;
  /** params.n of the body, when it is one of the suite's messages. */
  n: number | undefined;
  timeMs: number;
}

export class StreamAdmin {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(urls: readonly string[]): Promise<StreamAdmin> {
    const nc = await connect({ servers: [...urls], maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'faults-admin' });
    return new StreamAdmin(nc, jetstream(nc, { timeout: 5_000 }), await jetstreamManager(nc, { timeout: 5_000, checkAPI: false }));
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => undefined);
  }

  /** `$JS.API.STREAM.INFO.PUSH_MESSAGES`, raw; undefined when nobody answers in time. */
  async info(timeoutMs = 2_000): Promise<StreamInfoReply | undefined> {
    try {
      const m = await this.nc.request(`$JS.API.STREAM.INFO.${STREAM}`, '', { timeout: timeoutMs });
      return m.json<StreamInfoReply>();
    } catch {
      return undefined;
    }
  }

  /** The stream leader's server name, waiting through an election. */
  async leader(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.info();
      const leader = info?.cluster?.leader;
      if (leader) return leader;
      if (Date.now() > deadline) throw new Error(`no leader for ${STREAM} within ${timeoutMs} ms (${JSON.stringify(info?.error ?? info?.cluster)})`);
      await sleep(250);
    }
  }

  /** Waits until the JetStream meta layer answers (a new cluster elects its meta leader first). */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const m = await this.nc.request('$JS.API.INFO', '', { timeout: 1_000 });
        const r = m.json<{ error?: unknown }>();
        if (r.error === undefined) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error('JetStream cluster did not become ready');
      await sleep(250);
    }
  }

  async deleteStream(): Promise<StreamInfoReply> {
    const m = await this.nc.request(`$JS.API.STREAM.DELETE.${STREAM}`, '', { timeout: 10_000 });
    return m.json<StreamInfoReply>();
  }

  /** Creates the stream with a configuration read from it earlier (what an operator would restore). */
  async createStream(config: Record<string, unknown>): Promise<StreamInfoReply> {
    const m = await this.nc.request(`$JS.API.STREAM.CREATE.${STREAM}`, JSON.stringify(config), { timeout: 10_000 });
    return m.json<StreamInfoReply>();
  }

  /**
   * Every copy stored on one channel (`priv.<id>` / `pub.<id>`), read with a
   * short-lived ordered consumer filtered to its subject.
   */
  async channelCopies(key: string, timeoutMs = 20_000): Promise<StoredCopy[]> {
    const subject = `push.msg.${key}`;
    const last = await this.jsm.direct.getMessage(STREAM, { last_by_subj: subject });
    if (last === null) return [];
    const out: StoredCopy[] = [];
    const consumer = await this.js.consumers.get(STREAM, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
    const deadline = Date.now() + timeoutMs;
    try {
      let seen = 0;
      while (seen < last.seq && Date.now() < deadline) {
        const batch = await consumer.fetch({ max_messages: 2_000, expires: 2_000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          seen = m.seq;
          out.push({ seq: m.seq, n: bodyNumber(m.data), timeMs: Math.floor(m.info.timestampNanos / 1e6) });
          if (m.seq >= last.seq) break;
        }
        if (got === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return out;
  }
}

/** params.n of a suite message body, read without trusting it to be JSON. */
export function bodyNumber(data: Uint8Array | string): number | undefined {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  const m = /"n":(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Message blocks of the stream in a node's store directory (file store `*.blk`). */
export function streamBlockCount(storeDir: string): number {
  try {
    const dir = join(storeDir, 'jetstream', '$G', 'streams', STREAM, 'msgs');
    return readdirSync(dir).filter((f) => f.endsWith('.blk')).length;
  } catch {
    return 0;
  }
}
