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
  /** Messages per channel and page. */
  pageMessages: number;
  /** Bytes of bodies per page: one frame, well under the connection's outbox. */
  pageBytes: number;
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
        const page = await this.reader.readPage(session.keys, from, { messages: this.opts.pageMessages, bytes: this.opts.pageBytes }, job.readKeys);
        if (page.messages.length === 0 && page.truncated && !session.isClosed) {
          from = page.nextFrom;
          continue;
        }
        await this.hand(session, page.messages, page.truncated, page.nextFrom, started);
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
    const collected = new Map<Job, { messages: StoredMessage[]; bytes: number }>(shared.map((j) => [j, { messages: [], bytes: 0 }]));
    const capped = new Set<Job>();
    const from = shared[shared.length - 1]!.fromSeq;
    let last: number;
    try {
      last = await this.stream.scan(from, (key) => byKey.has(key), (m) => {
        for (const j of byKey.get(m.key)!) {
          if (m.seq <= j.fromSeq || capped.has(j)) continue;
          const page = collected.get(j)!;
          page.messages.push(m);
          page.bytes += m.body.length;
          if (page.messages.length >= this.opts.pageMessages || page.bytes >= this.opts.pageBytes) capped.add(j);
        }
      });
      this.log.info({ count: shared.length, fromSeq: from, toSeq: last, durationMs: Date.now() - started }, 'shared replay scan done');
    } catch (err) {
      for (const j of shared) this.fail(j.session, err);
      return;
    }
    await Promise.all(
      shared.map(async (j) => {
        if (j.session.isClosed) return;
        try {
          const page = collected.get(j)!;
          const messages = await this.reader.finalize(page.messages, j.session.keys, j.fromSeq);
          const horizon = capped.has(j) ? page.messages.at(-1)!.seq : last;
          await this.hand(j.session, messages, capped.has(j), horizon, started);
        } catch (err) {
          this.fail(j.session, err);
        }
      }),
    );
  }

  /**
   * Hands the replay over once live delivery has reached `horizon` (the sequence up to
   * which the replay considered everything), so the session's buffer holds every live
   * message it did not read; if live delivery lags, the session keeps no floor beyond
   * its own mid (a duplicate rather than a loss).
   */
  private async hand(session: Session, messages: readonly StoredMessage[], truncated: boolean, horizon: number, started: number): Promise<void> {
    const caughtUp = truncated || (await this.hub.whenSeen(horizon, session.keys));
    const now = Date.now();
    const epoch = this.epochSec();
    session.finishSync(
      messages.map((m) => new Delivery(m, epoch, now)),
      !truncated,
      caughtUp ? horizon : 0,
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
