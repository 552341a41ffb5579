import type { Logger } from '../log/logger.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { StoredMessage } from '../nats/stored-message.ts';
import type { StreamReader } from '../nats/stream-reader.ts';
import { Delivery } from './delivery.ts';
import type { Hub } from './hub.ts';
import type { ReplayReader } from './replay-reader.ts';
import type { Session } from './session.ts';

interface Job {
  readonly session: Session;
  readonly fromSeq: number;
  /** The session's channels that may hold something newer than fromSeq. */
  readonly readKeys: readonly string[];
}

export interface ReplaySchedulerOptions {
  maxConcurrent: number;
  pageMessages: number;
}

/** Queued replays from which one shared scan of the stream is worth its cost. */
const SHARED_MIN_JOBS = 16;
/** Replays served by one shared scan at most. */
const SHARED_MAX_JOBS = 10_000;
/**
 * Stream messages a shared scan may read per replay it serves. A replay by direct gets
 * costs about a dozen gets; on a large stream during a storm nats-server managed about
 * 1,000 gets/s, i.e. ~12 ms per replay, while a scan reads 50–70k messages/s: a scan is
 * the cheaper read up to ~600 messages per replay it serves.
 */
const SHARED_SCAN_MESSAGES_PER_JOB = 500;

/**
 * Runs the replays of reconnecting clients, at most `maxConcurrent` at a time.
 *
 * - A channel the hub already knows has nothing newer than the client's mid (it
 *   held the subscription all along) is not read at all; a client whose channels
 *   are all like that goes live at once. This is the common case of a long poll
 *   coming back with the mid of the message it just got.
 * - A few replays read their channels with direct gets (ReplayReader).
 * - Many replays waiting at once (a reconnect storm) are served by one shared scan:
 *   one ordered consumer reads the stream from the oldest of their mids and hands
 *   each message to the replays of its channel. Per-client direct gets made
 *   nats-server the bottleneck of a storm (about 11 reads per client); a scan reads
 *   each stored message once. Clients whose mid is much older than the others' are
 *   left out of the scan and read on their own.
 */
export class ReplayScheduler {
  /** Replays that may share a scan. */
  private queue: Job[] = [];
  /** Replays whose mid is too old to share a scan: read on their own. */
  private alone: Job[] = [];
  private running = 0;
  /** One shared scan at a time: several would each read the same stretch of the stream. */
  private scanning = false;

  constructor(
    private readonly hub: Hub,
    private readonly reader: ReplayReader,
    private readonly stream: StreamReader,
    private readonly epochSec: () => number,
    private readonly opts: ReplaySchedulerOptions,
    private readonly telemetry: Telemetry,
    private readonly log: Logger,
  ) {}

  get waiting(): number {
    return this.queue.length + this.alone.length;
  }

  get inUse(): number {
    return this.running;
  }

  /** The session is attached to the hub (live messages are buffered); hand it what it missed. */
  replay(session: Session, fromSeq: number): void {
    const readKeys = session.keys.filter((k) => !this.hub.knowsNothingAfter(k, fromSeq));
    if (readKeys.length === 0) {
      session.finishSync([]);
      this.telemetry.replayDone(0, 0);
      return;
    }
    this.queue.push({ session, fromSeq, readKeys });
    this.pump();
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent) {
      let run: Promise<void>;
      if (this.queue.length >= SHARED_MIN_JOBS || (this.scanning && this.queue.length > 0 && this.alone.length === 0)) {
        // A storm: replays gather for the next shared scan.
        if (this.scanning) return;
        this.scanning = true;
        run = this.runShared(this.queue.splice(0, SHARED_MAX_JOBS)).finally(() => {
          this.scanning = false;
        });
      } else {
        const job = this.alone.shift() ?? this.queue.shift();
        if (job === undefined) return;
        run = this.runOne(job);
      }
      this.running++;
      void run.finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async runOne(job: Job): Promise<void> {
    const { session } = job;
    if (session.isClosed) return;
    const started = Date.now();
    try {
      let from = job.fromSeq;
      for (;;) {
        const page = await this.reader.readPage(session.keys, from, this.opts.pageMessages, job.readKeys);
        if (page.messages.length === 0 && page.truncated && !session.isClosed) {
          from = page.nextFrom;
          continue;
        }
        this.hand(session, page.messages, page.truncated, started);
        return;
      }
    } catch (err) {
      this.fail(session, err);
    }
  }

  private async runShared(group: Job[]): Promise<void> {
    const started = Date.now();
    group = group.filter((j) => !j.session.isClosed);
    let end: number;
    try {
      end = await this.stream.end();
    } catch (err) {
      for (const j of group) this.fail(j.session, err);
      return;
    }
    // Newest mids first; keep the longest run whose scan stays within budget.
    group.sort((a, b) => b.fromSeq - a.fromSeq);
    let size = group.length;
    while (size > 1 && end - group[size - 1]!.fromSeq > size * SHARED_SCAN_MESSAGES_PER_JOB) size--;
    const shared = group.slice(0, size);
    this.alone.push(...group.slice(size));
    if (shared.length < SHARED_MIN_JOBS) {
      for (const j of shared) await this.runOne(j);
      return;
    }

    const byKey = new Map<string, Job[]>();
    for (const j of shared) {
      for (const k of j.readKeys) {
        const list = byKey.get(k);
        if (list === undefined) byKey.set(k, [j]);
        else list.push(j);
      }
    }
    const collected = new Map<Job, StoredMessage[]>(shared.map((j) => [j, []]));
    const capped = new Set<Job>();
    const from = shared[shared.length - 1]!.fromSeq;
    try {
      const last = await this.stream.scan(from, (key) => byKey.has(key), (m) => {
        for (const j of byKey.get(m.key)!) {
          if (m.seq <= j.fromSeq || capped.has(j)) continue;
          const list = collected.get(j)!;
          list.push(m);
          if (list.length >= this.opts.pageMessages) capped.add(j);
        }
      });
      this.log.info({ count: shared.length, fromSeq: from, toSeq: last, durationMs: Date.now() - started }, 'shared replay scan done');
    } catch (err) {
      for (const j of shared) this.fail(j.session, err);
      return;
    }
    for (const j of shared) {
      if (j.session.isClosed) continue;
      try {
        const messages = await this.reader.finalize(collected.get(j)!, j.session.keys, j.fromSeq);
        this.hand(j.session, messages, capped.has(j), started);
      } catch (err) {
        this.fail(j.session, err);
      }
    }
  }

  private hand(session: Session, messages: readonly StoredMessage[], truncated: boolean, started: number): void {
    const now = Date.now();
    const epoch = this.epochSec();
    session.finishSync(
      messages.map((m) => new Delivery(m, epoch, now)),
      !truncated,
    );
    this.telemetry.replayDone(now - started, messages.length);
    if (truncated && session.transport === 'ws') {
      // The client reconnects at once with the mid of the last message it got and the replay goes on.
      session.close(CloseCode.TryAgainLater);
    }
  }

  private fail(session: Session, err: unknown): void {
    this.log.warn({ err, connId: session.id }, 'replay failed');
    session.close(CloseCode.CannotGetLastMessages);
  }
}
