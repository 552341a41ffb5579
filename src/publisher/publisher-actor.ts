import { Actor } from '../actors/actor.ts';
import { OverloadedError, StoppingError, toClientError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import type { PublisherStats, PublishLane, Telemetry } from '../telemetry/telemetry.ts';
import { deferred, type Deferred } from '../util/deferred.ts';
import type { PublishCommand, PublishResult } from './publish-command.ts';
import type { StreamWriter } from './stream-writer.ts';

type PublisherMsg = { type: 'publish'; cmd: PublishCommand; started: number; deadline: number; reply: Deferred<PublishResult> };

/**
 * Validated publish commands in, acknowledged mids out. The mailbox is bounded
 * (publisher.mailboxCapacity) and so are writes awaiting JetStream
 * (publisher.maxInFlight): the actor stops taking from its mailbox while every
 * write slot is busy, the mailbox fills, and `publish` fails fast with
 * OverloadedError (HTTP 503) instead of queueing without limit. A publish that
 * finds nothing queued before it and a slot free starts its write at once, as the
 * actor's next turn would, without the mailbox's hand-over (one promise and a turn of
 * the loop per publish, measurable at tens of thousands per second).
 *
 * A process runs two of these over one StreamWriter: the portal's lane (backend
 * routes, the NATS publish API) and the client lane (publishes of browsers and apps,
 * untrusted), each with its own mailbox and write slots, so however many publishes
 * clients queue, the portal's never wait behind them or are refused for them.
 */
export class PublisherActor extends Actor<PublisherMsg> {
  private inFlight = 0;
  /** Publishes handed to the mailbox whose write has not started: while there are any, new ones queue behind them. */
  private waiting = 0;
  private slotFreed: Deferred<void> | null = null;
  private allDone: Deferred<void> | null = null;
  private counters = { published: 0, failed: 0, rejectedOverloaded: 0 };

  constructor(
    log: Logger,
    private readonly writer: StreamWriter,
    mailboxCapacity: number,
    private readonly maxInFlight: number,
    /** Time from the request to its acknowledgement, waiting for a write slot included. */
    private readonly publishTimeoutMs: number,
    private readonly telemetry: Telemetry,
    private readonly lane: PublishLane = 'portal',
  ) {
    super(log, mailboxCapacity);
  }

  /** Resolves with the stored mids once JetStream acknowledged every copy. */
  publish(cmd: PublishCommand): Promise<PublishResult> {
    if (this.state !== 'running') return Promise.reject(new StoppingError());
    const now = Date.now();
    if (this.waiting === 0 && this.inFlight < this.maxInFlight) return this.startWrite(cmd, now, now + this.publishTimeoutMs);
    const reply = deferred<PublishResult>();
    if (!this.tell({ type: 'publish', cmd, started: now, deadline: now + this.publishTimeoutMs, reply })) {
      this.counters.rejectedOverloaded++;
      this.telemetry.admissionRefused(this.lane === 'client' ? 'client-mailbox' : 'mailbox');
      return Promise.reject(new OverloadedError());
    }
    this.waiting++;
    return reply.promise;
  }

  stats(): PublisherStats {
    return { ...this.counters, inFlight: this.inFlight, queued: this.mailbox.size };
  }

  protected handle(msg: PublisherMsg): void | Promise<void> {
    switch (msg.type) {
      case 'publish':
        if (this.inFlight >= this.maxInFlight) return this.waitForSlot().then(() => this.startQueued(msg));
        this.startQueued(msg);
        return;
      default: {
        const never: never = msg.type;
        throw new TypeError(`unhandled message ${String(never)}`);
      }
    }
  }

  /** In-flight writes finish before the actor reports stopped. */
  protected override async onStop(): Promise<void> {
    if (this.inFlight > 0) {
      this.allDone = deferred<void>();
      await this.allDone.promise;
    }
  }

  private startQueued(msg: PublisherMsg): void {
    this.waiting--;
    this.startWrite(msg.cmd, msg.started, msg.deadline).then(msg.reply.resolve, msg.reply.reject);
  }

  private startWrite(cmd: PublishCommand, started: number, deadline: number): Promise<PublishResult> {
    this.inFlight++;
    return this.writer.write(cmd, deadline).then(
      (result) => {
        this.counters.published++;
        this.telemetry.publishDone(cmd.source ?? 'http_text', true, Date.now() - started);
        this.release();
        return result;
      },
      (err: unknown) => {
        this.counters.failed++;
        this.telemetry.publishDone(cmd.source ?? 'http_text', false, Date.now() - started);
        const clientError = toClientError(err);
        this.log.warn({ err, code: clientError.code, receivers: cmd.receivers.length }, 'publish failed');
        this.release();
        throw clientError;
      },
    );
  }

  private release(): void {
    this.inFlight--;
    if (this.slotFreed !== null) {
      const d = this.slotFreed;
      this.slotFreed = null;
      d.resolve();
    }
    if (this.inFlight === 0 && this.allDone !== null) this.allDone.resolve();
  }

  private waitForSlot(): Promise<void> {
    this.slotFreed ??= deferred<void>();
    return this.slotFreed.promise;
  }
}
