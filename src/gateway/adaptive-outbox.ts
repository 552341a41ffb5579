import { joinedFrame, type Delivery, type FrameFormat } from './delivery.ts';
import type { FrameBounds, FrameWriter, Outbox } from './outbox.ts';
import { callbackEnd, turns, type EndListener } from './turn.ts';

/**
 * Coalescing without a timer (the default, `gateway.coalesceWindowMs` 0).
 *
 * A message to a connection whose socket has nothing queued goes out at once: it is
 * written when the callback that delivered it ends (process.nextTick), together with
 * whatever else that callback delivered to the connection (one NATS read), so a lone
 * message is a frame of its own. Messages that arrive while a write has not drained
 * (its callback has not run, the socket holds bytes) or later in the same event-loop
 * turn are gathered and go out as one frame when the turn ends, or once the write has
 * drained if that is later. A frame is written early once it is full
 * (`coalesceMaxBytes`, `coalesceMaxMessages`).
 *
 * A connection that keeps up gets every message at once; one that falls behind gets
 * fewer, larger frames. Connections that gathered the same messages (a burst on a
 * shared channel) get the same buffer (`joinedFrame`).
 */
/** Shared by every outbox with nothing pending (most connections, most of the time): never written to. */
const NOTHING: ReadonlyArray<Delivery | Buffer> = Object.freeze([]);

export class AdaptiveOutbox implements Outbox, EndListener {
  /** Live deliveries (shareable frames), or frames already built (a replay). */
  private pending: Array<Delivery | Buffer> = NOTHING as Array<Delivery | Buffer>;
  private pendingBytes = 0;
  private pendingMessages = 0;
  /** Entries of `pending` that are built frames: with any, the frame is this connection's own. */
  private pendingBuilt = 0;
  /** Writes handed to the socket whose callback has not run yet. */
  private writing = 0;
  /** The turn in which messages last went out at once: later ones of that turn are gathered. */
  private sentInTurn = 0;
  /** Where the pending frame waits: the end of the delivering callback, or of the turn. */
  private waitsFor: 'callback' | 'turn' | undefined;
  /** The write callback, made on the first write (a connection that never gets a message does not pay for it). */
  private written: (() => void) | undefined;

  constructor(
    private readonly writer: FrameWriter,
    private readonly format: FrameFormat,
    private readonly bounds: FrameBounds,
  ) {}

  get queuedBytes(): number {
    return this.pendingBytes;
  }

  add(frame: Buffer, list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    // A replay is the first thing a connection sends (live messages follow it): nothing waits ahead of it.
    const entry = grouping === 'live' && list.length === 1 ? list[0]! : frame;
    if (this.pending.length > 0 && this.isFullWith(frame.length, list.length)) this.flush();
    const idle = this.pending.length === 0 && this.waitsFor === undefined && this.isIdle();
    if (this.pending === NOTHING) this.pending = [];
    this.pending.push(entry);
    this.pendingBytes += frame.length;
    this.pendingMessages += list.length;
    if (entry === frame) this.pendingBuilt++;
    if (grouping === 'replay') {
      // Written now: the replay may end with a close in the same callback (a page boundary).
      if (this.flush()) this.sentInTurn = turns.current();
      return;
    }
    if (this.waitsFor !== undefined) return;
    this.waitsFor = idle ? 'callback' : 'turn';
    (idle ? callbackEnd : turns).defer(this);
  }

  ready(): void {
    if (this.pending.length > 0) this.flush();
  }

  flushNow(): void {
    this.flush();
  }

  clear(): void {
    this.pending = NOTHING as Array<Delivery | Buffer>;
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    this.pendingBuilt = 0;
  }

  /** @internal the callback or turn it waited for ended. */
  ended(at: 'callback' | 'turn'): void {
    this.waitsFor = undefined;
    if (this.pending.length === 0) return;
    if (at === 'callback') {
      if (this.flush()) this.sentInTurn = turns.current();
    } else if (this.writing === 0) {
      this.flush();
    }
    // Still draining: `drained` brings it back to the turn's end.
  }

  private isIdle(): boolean {
    return this.writing === 0 && this.writer.socketBufferedBytes === 0 && this.sentInTurn !== turns.current();
  }

  private isFullWith(bytes: number, messages: number): boolean {
    return this.pendingBytes + bytes > this.bounds.maxBytes || this.pendingMessages + messages > this.bounds.maxMessages;
  }

  /** Writes everything pending as one frame. */
  private flush(): boolean {
    if (this.pending.length === 0 || !this.writer.canWrite) return false;
    const frame = this.frame();
    const messages = this.pendingMessages;
    this.clear();
    if (!this.writer.writeFrame(frame, messages, (this.written ??= () => this.drained()))) return false;
    this.writing++;
    return true;
  }

  private frame(): Buffer {
    const p = this.pending;
    if (p.length === 1) {
      const only = p[0]!;
      return Buffer.isBuffer(only) ? only : only.chunk(this.format);
    }
    if (this.pendingBuilt === 0) return joinedFrame(p as Delivery[], this.format);
    return Buffer.concat(
      p.map((e) => (Buffer.isBuffer(e) ? e : e.chunk(this.format))),
      this.pendingBytes,
    );
  }

  /** A write's callback ran. */
  private drained(): void {
    this.writing--;
    if (this.writing === 0 && this.pending.length > 0 && this.waitsFor === undefined) {
      this.waitsFor = 'turn';
      turns.defer(this);
    }
  }
}
