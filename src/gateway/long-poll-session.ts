import type { ServerResponse } from 'node:http';
import { CloseCode, closeText, longPollStatus } from '../errors/close-codes.ts';
import { CONTENT_BINARY, CONTENT_TEXT, sendBody, sendNotModified, sendPlain } from '../wire/http-replies.ts';
import { batchFrame, type Delivery } from './delivery.ts';
import { Session, type SessionOptions } from './session.ts';

export interface LongPollSessionOptions extends SessionOptions {
  holdMs: number;
  /** The request's own valid mid, answered back in Last-Message-Id on timeout. */
  requestMid: string | undefined;
  /** Newest stored mid of the channels, for a timeout without a request mid. */
  newestMid: () => Promise<string>;
  /** The poll was answered (200 or the timeout's 304) with this mid for the client's next poll; '' for none. */
  onAnswered?: (mid: string) => void;
}

/**
 * One held long-poll request. It answers 200 with the first messages to arrive
 * (those of the same event-loop turn go together), the replay if the request's `mid`
 * is behind, or 304 with `Last-Message-Id` once `holdMs` passes. Then it is closed:
 * the client polls again at once, with the mid of the last message it got.
 */
export class LongPollSession extends Session {
  private readonly holdTimer: NodeJS.Timeout;
  private batch: Delivery[] = [];
  private flushScheduled = false;
  private holdExpired = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly opts: LongPollSessionOptions,
  ) {
    super('longpoll', opts);
    this.holdTimer = setTimeout(() => void this.onHoldTimeout(), opts.holdMs);
    res.on('close', () => {
      clearTimeout(this.holdTimer);
      this.markClosed();
    });
  }

  close(code: CloseCode, reason = closeText(code)): void {
    if (this.isClosed) return;
    clearTimeout(this.holdTimer);
    if (!this.res.headersSent) {
      const status = longPollStatus(code);
      // Draining, for example: an ordinary poll timeout, so the client polls again at once (elsewhere) with its mid.
      if (status === 'resume') sendNotModified(this.res, this.opts.requestMid ?? '');
      else sendPlain(this.res, status, reason);
    }
    this.markClosed();
  }

  protected emit(list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    if (grouping === 'replay') {
      this.respond([...this.batch, ...list], 'replay');
      return;
    }
    this.batch.push(...list);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.respond(this.batch, 'live'));
    }
  }

  protected closeSlow(queuedBytes: number): void {
    // Only a replay that outgrew the outbox gets here: answer with the resume point
    // unchanged, and the next poll continues the replay.
    this.log.info({ closeCode: CloseCode.SlowClient, queueBytes: queuedBytes }, 'slow client disconnected');
    this.telemetry.slowClientClosed('connection');
    clearTimeout(this.holdTimer);
    if (!this.res.headersSent) sendNotModified(this.res, this.opts.requestMid ?? '');
    this.markClosed();
  }

  protected override onLive(): void {
    if (this.holdExpired) void this.onHoldTimeout();
  }

  private respond(list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    if (this.isClosed || this.res.headersSent) return;
    clearTimeout(this.holdTimer);
    this.batch = [];
    if (list.length > 0) {
      const body = batchFrame(list, this.format, grouping);
      if (body.length === 0) {
        // JSON-RPC messages the client could not read: it moves past them by the 304's mid.
        sendNotModified(this.res, list.at(-1)!.mid);
        this.opts.onAnswered?.(list.at(-1)!.mid);
        this.markClosed();
        return;
      }
      sendBody(this.res, 200, body, this.format === 'binary' ? CONTENT_BINARY : CONTENT_TEXT);
      this.telemetry.delivered(list.length, body.length);
      this.opts.onAnswered?.(list.at(-1)!.mid);
    }
    this.markClosed();
  }

  private async onHoldTimeout(): Promise<void> {
    this.holdExpired = true;
    // Still replaying after the whole hold time: onLive answers once it is done.
    if (this.isClosed || this.state === 'syncing' || this.flushScheduled) return;
    const lastMessageId = this.opts.requestMid ?? (await this.opts.newestMid().catch(() => ''));
    if (this.isClosed || this.res.headersSent) return;
    sendNotModified(this.res, lastMessageId);
    this.opts.onAnswered?.(lastMessageId);
    this.markClosed();
  }
}
