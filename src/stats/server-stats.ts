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
   * bucket within OTHERS_READ_MS; when NATS does not answer in that time (frozen, a
   * leader election) the answer has this process's entry only, and says so in the log.
   */
  async readAll(): Promise<ServerStat[]> {
    const now = Date.now();
    const own = this.snapshot();
    const others = await this.readOthers(AbortSignal.timeout(OTHERS_READ_MS)).catch((err: unknown) => {
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

  private async readOthers(signal: AbortSignal): Promise<Array<KvEntry | null>> {
    const keys = await this.kv.keys(signal);
    const reads = Promise.all(keys.filter((k) => k !== this.key()).map((k) => this.kv.get(k)));
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true }));
    reads.catch(() => undefined);
    aborted.catch(() => undefined);
    return Promise.race([reads, aborted]);
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
