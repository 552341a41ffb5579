import { joinedFrame, type Delivery, type FrameFormat } from './delivery.ts';
import type { FrameBounds, FrameWriter, Outbox } from './outbox.ts';
import { turns, type TurnEndListener } from './turn.ts';

/**
 * Coalescing without a timer (the default, `gateway.coalesceWindowMs` 0). A message
 * to a connection whose socket has nothing queued is written at once, as its own
 * frame. Messages that arrive while an earlier write has not drained (its write
 * callback has not run), or later in the same event-loop turn as a message that went
 * out at once, are gathered and go out together as one frame at the end of the turn
 * (or once the write drained, if later); a frame is written early when it is full.
 * A connection that keeps up gets every message at once; one that falls behind gets
 * fewer, larger frames, and a burst of one NATS read becomes one frame per socket,
 * the same buffer for every connection that gathered the same messages.
 */
export class AdaptiveOutbox implements Outbox, TurnEndListener {
  /** Live deliveries (shareable frames), or frames already built (a replay). */
  private pending: Array<Delivery | Buffer> = [];
  private pendingBytes = 0;
  private pendingMessages = 0;
  /** Frames in `pending` that are not single deliveries: with any, the frame is this connection's own. */
  private pendingBuilt = 0;
  /** Writes handed to the socket whose callback has not run yet. */
  private writing = 0;
  /** The turn in which a message last went out at once; later ones of that turn are gathered. */
  private sentInTurn = 0;
  private atTurnEnd = false;

  constructor(
    private readonly writer: FrameWriter,
    private readonly format: FrameFormat,
    private readonly bounds: FrameBounds,
  ) {}

  get queuedBytes(): number {
    return this.pendingBytes;
  }

  add(frame: Buffer, list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    // A replay is the first thing a connection sends (live messages follow it), so it never waits behind them.
    const entry = grouping === 'live' && list.length === 1 ? list[0]! : frame;
    if (this.pending.length > 0 && this.isFullWith(frame.length, list.length)) this.flush();
    this.pending.push(entry);
    this.pendingBytes += frame.length;
    this.pendingMessages += list.length;
    if (entry === frame) this.pendingBuilt++;
    if (this.pending.length === 1 && this.isIdle()) {
      if (this.flush()) this.sentInTurn = turns.current();
    } else {
      this.flushAtTurnEnd();
    }
  }

  ready(): void {
    if (this.pending.length > 0) this.flush();
  }

  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    this.pendingBuilt = 0;
  }

  /** @internal the turn ended: what was gathered goes out, unless a write is still draining. */
  turnEnded(): void {
    this.atTurnEnd = false;
    if (this.writing === 0 && this.pending.length > 0) this.flush();
  }

  private isIdle(): boolean {
    return this.writing === 0 && this.writer.socketBufferedBytes === 0 && this.sentInTurn !== turns.current();
  }

  private isFullWith(bytes: number, messages: number): boolean {
    return this.pendingBytes + bytes > this.bounds.maxBytes || this.pendingMessages + messages > this.bounds.maxMessages;
  }

  private flushAtTurnEnd(): void {
    if (this.atTurnEnd) return;
    this.atTurnEnd = true;
    turns.defer(this);
  }

  /** Writes everything pending as one frame. */
  private flush(): boolean {
    if (this.pending.length === 0 || !this.writer.canWrite) return false;
    const frame = this.frame();
    const messages = this.pendingMessages;
    this.clear();
    if (!this.writer.writeFrame(frame, messages, this.written)) return false;
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

  private readonly written = (): void => {
    this.writing--;
    if (this.writing === 0 && this.pending.length > 0) this.flushAtTurnEnd();
  };
}
