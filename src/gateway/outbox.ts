import type { Delivery, FrameFormat } from './delivery.ts';

/** The socket side of a WebSocket connection, as an outbox writes to it. */
export interface FrameWriter {
  /** True once the socket is bound and open. */
  readonly canWrite: boolean;
  /** Bytes the socket holds that the kernel has not taken yet. */
  readonly socketBufferedBytes: number;
  /**
   * Writes one frame of `messages` messages; `written` runs once the socket has
   * handed it to the kernel (or failed to). False when nothing was written.
   */
  writeFrame(frame: Buffer, messages: number, written?: () => void): boolean;
}

/** Bounds of one coalesced frame: a single message above them goes alone. */
export interface FrameBounds {
  maxBytes: number;
  maxMessages: number;
}

export interface OutboxOptions extends FrameBounds {
  format: FrameFormat;
}

/** How a WebSocket connection turns messages into frames. */
export interface Outbox {
  /** Bytes waiting here, not yet handed to the socket. */
  readonly queuedBytes: number;
  /**
   * Queues messages already encoded as `frame` (`list` is what it holds). A replay
   * is one frame of its own and goes ahead of live messages still waiting.
   */
  add(frame: Buffer, list: readonly Delivery[], grouping: 'live' | 'replay'): void;
  /** The socket is bound: write what waited for it. */
  ready(): void;
  /** Writes what waits now, as one frame: the connection is about to be closed. */
  flushNow(): void;
  /** Drops what waits and stops its timers: the connection is ending. */
  clear(): void;
}

/**
 * Push server 2.0's batching (`gateway.coalesceWindowMs` > 0): the first message
 * after a quiet period is written at once and opens the window; later ones wait
 * and go together as one frame when it ends, or as soon as a frame is full.
 */
export class WindowOutbox implements Outbox {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingMessages = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly writer: FrameWriter,
    private readonly windowMs: number,
    private readonly bounds: FrameBounds,
  ) {}

  get queuedBytes(): number {
    return this.pendingBytes;
  }

  add(frame: Buffer, list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    if (grouping === 'replay') {
      this.pending.unshift(frame);
      this.pendingBytes += frame.length;
      this.pendingMessages += list.length;
      this.flush();
      return;
    }
    if (this.pending.length > 0 && this.isFullWith(frame.length, list.length)) this.flush();
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    this.pendingMessages += list.length;
    if (this.timer === undefined) this.flush();
  }

  ready(): void {
    if (this.pending.length > 0 && this.timer === undefined) this.flush();
  }

  flushNow(): void {
    this.flush();
  }

  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    this.stopTimer();
  }

  private isFullWith(bytes: number, messages: number): boolean {
    return this.pendingBytes + bytes > this.bounds.maxBytes || this.pendingMessages + messages > this.bounds.maxMessages;
  }

  /** Writes everything pending as one frame and opens the window. */
  private flush(): void {
    if (this.pending.length === 0 || !this.writer.canWrite) return;
    const frame = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const messages = this.pendingMessages;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    this.writer.writeFrame(frame, messages);
    this.stopTimer();
    this.timer = setTimeout(this.windowEnded, this.windowMs);
  }

  private readonly windowEnded = (): void => {
    this.timer = undefined;
    if (this.pending.length > 0) this.flush();
  };

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}
