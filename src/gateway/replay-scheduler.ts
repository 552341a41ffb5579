import type { Logger } from '../log/logger.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { StoredMessage } from '../nats/stored-message.ts';
import type { StreamPosition, StreamReader } from '../nats/stream-reader.ts';
import { Delivery } from './delivery.ts';
import type { Hub } from './hub.ts';
import { mergePage, type ChannelRead, type ReplayPage, type ReplayReader } from './replay-reader.ts';
import { ScanWindow } from './scan-window.ts';
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
  /** Bytes of messages the scan window holds at most (see ScanWindow). */
  windowBytes: number;
  /**
   * Whether live delivery can lose a message without an event (NatsLink.clustered): then
   * a replay from memory first checks its channels' newest messages in the stream.
   */
  liveMayLoseSilently: () => boolean;
}

/** Replays arriving within a second from which the next ones share a scan of the stream. */
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
/** A scan window nobody used for this long is let go: the wave is over. */
const WINDOW_IDLE_MS = 10_000;

/**
 * Runs the replays of reconnecting clients, at most `maxConcurrent` at a time.
 *
 * - A channel the hub already knows has nothing newer than the client's mid (it
 *   held the subscription all along) is not read at all; a client whose channels
 *   are all like that goes live at once. This is the common case of a long poll
 *   coming back with the mid of the message it just got.
 * - A few replays read their channels with direct gets (ReplayReader).
 * - A wave of replays (16 or more within a second) is served by shared scans: one
 *   ordered consumer reads the stream from the oldest of their mids and the stretch
 *   it read is kept (ScanWindow). Replays that arrive meanwhile wait for the scan and
 *   are then served from the window, after one short read of what was stored since
 *   (shared by all that wait), or at once when the hub has had their channels since
 *   before the window's end. Per-client direct gets made nats-server the bottleneck of
 *   a storm (about 11 reads per client, each walking the interleaved stream); a scan
 *   reads each stored message once. Clients whose mid is much older than the others'
 *   are left out and read on their own.
 */
export class ReplayScheduler {
  /** Replays that may share a scan. */
  private queue: Job[] = [];
  /** Replays whose mid is too old to share a scan: read on their own. */
  private alone: Job[] = [];
  private running = 0;
  /** One shared scan at a time: several would each read the same stretch of the stream. */
  private scanning = false;
  private readonly window: ScanWindow;
  /** When the latest replays arrived (a ring): the pace of a wave. */
  private readonly arrivals = new Array<number>(SHARED_MIN_JOBS).fill(-Infinity);
  private arrived = 0;
  /** Replays served from the hub's recent messages so far. */
  fromMemory = 0;
  /** Replays from memory waiting for the check of their channels' newest messages. */
  private readonly probes: Array<{ job: Job; perChannel: readonly ChannelRead[]; started: number }> = [];

  constructor(
    private readonly hub: Hub,
    private readonly reader: ReplayReader,
    private readonly stream: StreamReader,
    private readonly epochSec: () => number,
    private readonly opts: ReplaySchedulerOptions,
    private readonly telemetry: Telemetry,
    private readonly log: Logger,
  ) {
    this.window = new ScanWindow(opts.windowBytes, WINDOW_IDLE_MS);
  }

  get waiting(): number {
    return this.queue.length + this.alone.length;
  }

  get inUse(): number {
    return this.running;
  }

  /** Bytes the scan window holds now. */
  get windowBytes(): number {
    return this.window.bytes;
  }

  /** The session is attached to the hub (live messages are buffered); hand it what it missed. */
  replay(session: Session, fromSeq: number): void {
    const readKeys = session.keys.filter((k) => !this.hub.knowsNothingAfter(k, fromSeq));
    if (readKeys.length === 0) {
      session.finishSync([]);
      this.telemetry.replayDone(0, 0);
      return;
    }
    const job = { session, fromSeq, readKeys };
    if (this.fromRecent(job, Date.now())) return;
    this.arrivals[this.arrived++ % SHARED_MIN_JOBS] = Date.now();
    if (this.fromWindow(job, Date.now())) return;
    this.queue.push(job);
    this.pump();
  }

  /**
   * Replays per second lately, when a wave is on (SHARED_MIN_JOBS arrived within a
   * second); 0 otherwise.
   */
  private wavePace(now = Date.now()): number {
    const oldest = this.arrivals[this.arrived % SHARED_MIN_JOBS]!;
    const span = now - oldest;
    return span > 1_000 ? 0 : (SHARED_MIN_JOBS * 1_000) / Math.max(span, 1);
  }

  private pump(): void {
    while (this.running < this.opts.maxConcurrent) {
      let run: Promise<void>;
      const lone = this.alone.shift();
      if (lone !== undefined) {
        run = this.runOne(lone);
      } else if (this.queue.length === 0) {
        return;
      } else if (this.queue.length >= SHARED_MIN_JOBS || this.wavePace() > 0 || this.window.covers(this.queue[0]!.fromSeq, this.epochSec())) {
        // A wave: replays gather for the next shared scan.
        if (this.scanning) return;
        this.scanning = true;
        run = this.runShared(this.queue.splice(0, SHARED_MAX_JOBS)).finally(() => {
          this.scanning = false;
        });
      } else {
        run = this.runOne(this.queue.shift()!);
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
        await this.hand(session, page.messages, page, started);
        return;
      }
    } catch (err) {
      this.fail(session, err);
    }
  }

  /**
   * Serves a replay from the hub's recent messages when they reach back to its mid on
   * every channel it has to read: no walk, no scan, no wait for a slot.
   */
  private fromRecent(job: Job, started: number): boolean {
    const perChannel: ChannelRead[] = [];
    for (const key of job.readKeys) {
      const read = this.hub.recentAfter(key, job.fromSeq, this.opts.pageMessages);
      if (read === undefined) return false;
      perChannel.push(read);
    }
    if (!this.opts.liveMayLoseSilently()) {
      this.serveFromMemory(job, perChannel, started);
      return true;
    }
    this.probes.push({ job, perChannel, started });
    if (this.probes.length === 1) setImmediate(() => this.probeRecent());
    return true;
  }

  /** The checks of a turn's replays from memory, sent together (one socket write, not one per handshake). */
  private probeRecent(): void {
    for (const p of this.probes.splice(0)) void this.serveRecent(p.job, p.perChannel, p.started);
  }

  /**
   * The recent messages hold everything the hub delivered. In a cluster, one
   * `last_by_subj` read per channel checks that the stream has nothing newer that live
   * delivery has not brought (a republished message lost without any event, e.g. while a
   * new subscription's interest travels to the stream leader, and not revealed by a
   * later message yet). If it has, or the read fails, the replay reads the stream.
   */
  private async serveRecent(job: Job, perChannel: readonly ChannelRead[], started: number): Promise<void> {
    const newest = await Promise.all(job.readKeys.map((key) => this.stream.last(key))).catch(() => undefined);
    const complete = newest?.every((m, i) => m === null || m.seq <= (this.hub.deliveredUpTo(job.readKeys[i]!) ?? -1));
    if (complete !== true) {
      this.queue.push(job);
      this.pump();
      return;
    }
    this.serveFromMemory(job, perChannel, started);
  }

  private serveFromMemory(job: Job, perChannel: readonly ChannelRead[], started: number): void {
    this.fromMemory++;
    const considered = perChannel.reduce((max, c) => Math.max(max, c.lastSeq), job.fromSeq);
    void this.serve(job, () => mergePage(perChannel, this.opts.pageBytes, considered), started);
  }

  /** Finishes a replay with the page `read` gives; any failure closes the session with 4011. */
  private async serve(job: Job, read: () => ReplayPage, started: number): Promise<void> {
    const { session } = job;
    try {
      const page = read();
      const messages = await this.reader.finalize(page.messages, session.keys, job.fromSeq);
      await this.hand(session, messages, page, started);
    } catch (err) {
      this.fail(session, err);
    }
  }

  /**
   * Serves a replay from the window when that is all it needs: the window holds its
   * channels from its mid on, and the hub has had each of them since before the
   * window's end without delivering anything newer, so what follows reaches the
   * session live.
   */
  private fromWindow(job: Job, started: number): boolean {
    if (!this.window.covers(job.fromSeq, this.epochSec())) return false;
    const to = this.window.to;
    if (!job.readKeys.every((k) => this.hub.knowsNothingAfter(k, to))) return false;
    void this.serveFromWindow(job, started);
    return true;
  }

  /** One page from the window; the window's end is the horizon. */
  private async serveFromWindow(job: Job, started: number): Promise<void> {
    const { session } = job;
    if (session.isClosed) return;
    await this.serve(
      job,
      () => mergePage(job.readKeys.map((k) => this.window.read(k, job.fromSeq, this.opts.pageMessages)), this.opts.pageBytes, Math.max(job.fromSeq, this.window.to)),
      started,
    );
  }

  /**
   * One shared pass: the window is opened (or extended back) for the waiting replays
   * it does not cover, within budget, then read on to the stream's end as it is now,
   * after every one of them was attached; each is then served from it.
   */
  private async runShared(group: Job[]): Promise<void> {
    const started = Date.now();
    const epoch = this.epochSec();
    this.window.prepare(epoch, started);
    group = group.filter((j) => !j.session.isClosed && !this.fromWindow(j, started));
    if (group.length === 0) return;
    let pos: StreamPosition;
    try {
      pos = await this.stream.position();
    } catch (err) {
      for (const j of group) this.fail(j.session, err);
      return;
    }
    const covered: Job[] = [];
    const older: Job[] = [];
    for (const j of group) (this.window.covers(j.fromSeq, epoch) ? covered : older).push(j);
    // Newest mids first; keep the longest run whose read stays within budget, counting the replays the wave brings meanwhile.
    older.sort((a, b) => b.fromSeq - a.fromSeq);
    const upTo = this.window.isOpen ? this.window.from : pos.lastSeq;
    const bytesPerMessage = pos.messages > 0 ? pos.bytes / pos.messages : 0;
    const expected = Math.min(SHARED_MAX_JOBS, Math.floor(this.wavePace(started)));
    let size = older.length;
    const tooFar = (n: number): boolean => {
      const span = upTo - older[n - 1]!.fromSeq;
      return span > Math.max(n, expected) * SHARED_SCAN_MESSAGES_PER_JOB || this.window.bytes + span * bytesPerMessage > this.opts.windowBytes;
    };
    while (size > 0 && tooFar(size)) size--;
    this.alone.push(...older.slice(size));
    const shared = [...covered, ...older.slice(0, size)];
    if (shared.length === 0) return;
    const from = size > 0 ? older[size - 1]!.fromSeq : this.window.from;
    try {
      if (!this.window.isOpen) {
        this.window.openAt(from);
      } else if (from < this.window.from) {
        const before: StoredMessage[] = [];
        await this.stream.scan(from, () => true, (m) => before.push(m), () => 0, this.window.from);
        this.window.prepend(from, before);
      }
      const readAfter = this.window.to;
      const last = await this.stream.scan(readAfter, () => true, (m) => this.window.append(m));
      this.window.advanceTo(last);
      this.log.info(
        { count: shared.length, fromSeq: from, readAfterSeq: readAfter, toSeq: last, windowBytes: this.window.bytes, durationMs: Date.now() - started },
        'shared replay scan done',
      );
    } catch (err) {
      this.window.clear();
      for (const j of shared) this.fail(j.session, err);
      return;
    }
    await Promise.all(
      shared.map((j) => {
        // The window let go of its start (over its byte limit): read on its own.
        if (!this.window.covers(j.fromSeq, epoch)) {
          this.alone.push(j);
          return undefined;
        }
        return this.serveFromWindow(j, started);
      }),
    );
  }

  /**
   * Hands the replay over once live delivery has reached the page's horizon (the
   * sequence up to which the replay considered everything), so the session's buffer
   * holds every live message it did not read. If live delivery lags, later live
   * messages up to the horizon may be ones the replay did not read (a channel read
   * before they were stored): the session then drops only what each channel's own read
   * covered.
   */
  private async hand(session: Session, messages: readonly StoredMessage[], page: ReplayPage, started: number): Promise<void> {
    const { truncated, nextFrom: horizon } = page;
    const caughtUp = truncated || (await this.hub.whenSeen(horizon, session.keys));
    const now = Date.now();
    const epoch = this.epochSec();
    session.finishSync(
      messages.map((m) => new Delivery(m, epoch, now)),
      !truncated,
      caughtUp ? horizon : 0,
      caughtUp ? undefined : page.readTo,
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
