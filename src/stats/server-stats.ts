import type { Logger } from '../log/logger.ts';
import type { KvEntry, KvStore } from '../nats/kv-store.ts';

/** Time the other processes' entries get to be read from the bucket before /server-stat/ answers without them. */
const OTHERS_READ_MS = 2_000;

/** One process's entry of `/server-stat/` (spec §5.5). */
export interface ServerStat {
  pid: number;
  date: number;
  processUniqueId: string;
  channels: number;
  limits: { maxPayload: number; maxConnPerChannel: number; maxMessagesPerRequest: number; maxChannelsPerRequest: number };
  clusterMode: boolean;
  websockets: number;
  pollings: number;
  daily: { requests: Record<string, number>; messages: Record<string, number> };
  /** jetpull's own additions: the replay window held, and what an operator should know. */
  jetpull?: { replayWindowSec: number | null; signatureKeys: number; warnings: string[] };
}

/**
 * Every process writes its own stats object into the PUSH_STATS bucket every
 * `intervalMs` (a few seconds; the reference was up to 60 s stale) and any process
 * answers `/server-stat/` with all entries younger than the bucket's age limit.
 */
export class ServerStatsReporter {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kv: KvStore,
    private readonly processUniqueId: string,
    private readonly snapshot: () => ServerStat,
    private readonly intervalMs: number,
    private readonly maxAgeMs: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.report();
    this.timer = setInterval(() => void this.report(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.kv.delete(this.key()).catch(() => undefined);
  }

  /**
   * Every live process's entry, this one's always fresh. The others are read from the
   * bucket (requests only) within OTHERS_READ_MS; when NATS does not answer in that
   * time (frozen, a leader election) the answer has this process's entry only, and the
   * log says so. Abandoned requests end by their own timeout.
   */
  async readAll(): Promise<ServerStat[]> {
    const now = Date.now();
    const own = this.snapshot();
    const others = await this.readOthers().catch((err: unknown) => {
      this.log.warn({ err, timeoutMs: OTHERS_READ_MS }, "other processes' stats not read: answering with this process's only");
      return [];
    });
    const out: ServerStat[] = [own];
    for (const e of others) {
      if (e === null || now - e.createdMs > this.maxAgeMs) continue;
      try {
        out.push(JSON.parse(e.value) as ServerStat);
      } catch {
        // not ours to interpret
      }
    }
    return out;
  }

  private async readOthers(): Promise<Array<KvEntry | null>> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${OTHERS_READ_MS} ms`)), OTHERS_READ_MS);
    });
    const reads = (async () => {
      const keys = await this.kv.keys();
      return Promise.all(keys.filter((k) => k !== this.key()).map((k) => this.kv.get(k)));
    })();
    reads.catch(() => undefined);
    try {
      return await Promise.race([reads, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private key(): string {
    // KV keys allow [-/_=.a-zA-Z0-9]; anything else in the process id becomes '_'.
    return this.processUniqueId.replace(/[^-/_=.a-zA-Z0-9]/g, '_');
  }

  private async report(): Promise<void> {
    try {
      await this.kv.put(this.key(), JSON.stringify(this.snapshot()));
    } catch (err) {
      this.log.debug({ err }, 'stats report failed');
    }
  }
}
