import { WebSocket } from 'ws';
import { CloseCode, closeText } from '../errors/close-codes.ts';
import type { SlowLimit } from '../telemetry/telemetry.ts';
import { TEXT_PING } from '../wire/json-rpc.ts';
import { AdaptiveOutbox } from './adaptive-outbox.ts';
import { batchFrame, type Delivery } from './delivery.ts';
import type { OutboundBudget, OutboundQueue } from './outbound-budget.ts';
import { WindowOutbox, type FrameBounds, type FrameWriter, type Outbox } from './outbox.ts';
import { Session, type SessionOptions } from './session.ts';

export interface WsSessionOptions extends SessionOptions {
  /** 0: adaptive coalescing (AdaptiveOutbox); above 0: Push server 2.0's fixed window (WindowOutbox). */
  coalesceWindowMs: number;
  /** Largest coalesced frame (bytes) and most messages in one. */
  coalesceBounds: FrameBounds;
  /** Client frames handled at once; while that many are in hand the socket is not read. */
  maxRequestsInFlight: number;
  /** The process's budget of queued bytes (gateway.maxOutboundBytes), told what this connection queues. */
  outbound?: OutboundBudget | undefined;
}

interface ClientFrame {
  readonly data: Buffer;
  readonly isBinary: boolean;
}

/**
 * Time a client gets to answer a close frame before its socket is destroyed: a client
 * that never answers must not hold a shutdown (upgraded sockets are not the HTTP
 * server's to close) or memory.
 */
const CLOSE_GRACE_MS = 1_000;

/**
 * A WebSocket connection. Its outbox decides how messages become frames: at once
 * and gathered while the socket is busy (the default), or Push server 2.0's fixed
 * window. Unsent messages plus the socket's own buffer are bounded by
 * `maxOutboxBytes`; a client that stops reading is closed (4008) instead of holding
 * memory. Nothing is dropped while a ping is unanswered. What it queues also counts
 * against the process's budget (OutboundBudget).
 */
export class WsSession extends Session implements FrameWriter, OutboundQueue {
  private ws: WebSocket | undefined;
  private readonly outbox: Outbox;
  /** False after a ping is sent, true again when the pong comes back. */
  alive = true;
  private readonly isBinary: boolean;
  /** Protocol 5: JSON-RPC text both ways, text pings besides the protocol's. */
  readonly isJsonRpc: boolean;
  framesSent = 0;
  /** Handler for frames the client sends (binary mode and JSON-RPC requests); set by the gateway. */
  onClientFrame: ((session: WsSession, data: Buffer, isBinary: boolean) => Promise<void>) | undefined;
  private readonly maxRequestsInFlight: number;
  /** Client frames waiting for a slot (created on the first one: most clients never send). */
  private requests: ClientFrame[] | undefined;
  private requestsRunning = 0;
  /** Called on every pong: the connection is alive (presence refresh). */
  onPong: ((session: WsSession) => void) | undefined;
  private readonly outbound: OutboundBudget | undefined;
  /** Bytes of this connection the budget counts. */
  private counted = 0;

  constructor(opts: WsSessionOptions) {
    super('ws', opts);
    this.isBinary = opts.format === 'binary';
    this.isJsonRpc = opts.format === 'jsonrpc';
    this.maxRequestsInFlight = opts.maxRequestsInFlight;
    this.outbound = opts.outbound;
    this.outbox =
      opts.coalesceWindowMs > 0 ? new WindowOutbox(this, opts.coalesceWindowMs, opts.coalesceBounds) : new AdaptiveOutbox(this, opts.format, opts.coalesceBounds);
  }

  /** A close asked for before the socket was bound: the socket gets it as soon as it arrives. */
  private closedBeforeBind: { code: CloseCode; reason: string } | undefined;

  /** Binds the upgraded socket; messages delivered before this are kept and sent now. */
  bind(ws: SessionSocket): void {
    if (this.closedBeforeBind !== undefined) {
      // Closed between admission and the end of the handshake (drain, limit, stop): never leave the socket unowned.
      const { code, reason } = this.closedBeforeBind;
      if (code === CloseCode.AbnormalClosure) ws.terminate();
      else closeWithin(ws, code, reason);
      return;
    }
    this.ws = ws;
    ws.session = this;
    // Shared listeners (`this` is the socket): no closures per connection.
    ws.on('pong', onPong);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    this.outbox.ready();
  }

  /** @internal socket events, routed by the shared listeners below */
  pongReceived(): void {
    this.alive = true;
    this.onPong?.(this);
  }

  /**
   * @internal A frame from the client. Frames are handled in arrival order, at most
   * `maxRequestsInFlight` at a time; while that many are in hand the socket is not
   * read, so a client that sends faster than its requests are answered is held back
   * by TCP instead of filling the publisher for everyone.
   */
  frameReceived(data: Buffer, isBinary: boolean): void {
    // A text-mode connection takes no requests: its frames are ignored, as the reference does.
    if ((!this.isBinary && !this.isJsonRpc) || this.onClientFrame === undefined || this.isClosed) return;
    (this.requests ??= []).push({ data, isBinary });
    this.pumpRequests();
  }

  private pumpRequests(): void {
    const queue = this.requests!;
    while (queue.length > 0 && this.requestsRunning < this.maxRequestsInFlight && !this.isClosed) {
      const frame = queue.shift()!;
      this.requestsRunning++;
      void this.onClientFrame!(this, frame.data, frame.isBinary)
        .catch((err: unknown) => this.log.warn({ err }, 'client frame failed'))
        .finally(() => {
          this.requestsRunning--;
          this.pumpRequests();
        });
    }
    if (this.isClosed) queue.length = 0;
    const ws = this.ws;
    if (ws === undefined) return;
    const full = queue.length > 0 || this.requestsRunning >= this.maxRequestsInFlight;
    if (full && !ws.isPaused) ws.pause();
    else if (!full && ws.isPaused) ws.resume();
  }

  /** @internal */
  socketClosed(code: number): void {
    this.outbox.clear();
    if (this.markClosed()) this.log.debug({ closeCode: code, durationMs: Date.now() - this.openedAt }, 'connection closed');
  }

  /** @internal */
  socketFailed(err: Error): void {
    this.log.info({ err }, 'connection error');
  }

  get bufferedBytes(): number {
    return this.outbox.queuedBytes + (this.ws?.bufferedAmount ?? 0);
  }

  /** @internal FrameWriter, for the outbox */
  get canWrite(): boolean {
    const ws = this.ws;
    return ws !== undefined && ws.readyState === ws.OPEN;
  }

  /** @internal */
  get socketBufferedBytes(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** @internal */
  writeFrame(frame: Buffer, messages: number, written?: () => void): boolean {
    const ws = this.ws;
    // Empty: JSON-RPC messages the client could not read, nothing to send.
    if (ws === undefined || ws.readyState !== ws.OPEN || frame.length === 0) return false;
    this.telemetry.delivered(messages, frame.length);
    ws.send(frame, { binary: this.isBinary }, written);
    this.framesSent++;
    return true;
  }

  /** A reply to a client request, as its own frame, ahead of anything the outbox holds. */
  sendNow(frame: Buffer): void {
    const ws = this.ws;
    if (ws === undefined || this.isClosed || ws.readyState !== ws.OPEN) return;
    ws.send(frame, { binary: !this.isJsonRpc });
    this.framesSent++;
    // A client that sends requests and does not read the answers is slow like any other.
    if (this.bufferedBytes > this.maxOutboxBytes) {
      this.closeSlow(this.bufferedBytes);
      return;
    }
    this.account();
  }

  /** @internal OutboundQueue */
  recount(): number {
    this.counted = this.bufferedBytes;
    return this.counted;
  }

  /** @internal OutboundQueue */
  closeOverBudget(): void {
    if (!this.isClosed) this.closeSlow(this.bufferedBytes, 'process');
  }

  ping(): void {
    const ws = this.ws;
    if (ws === undefined || this.isClosed) return;
    if (!this.alive) {
      this.log.info({ closeCode: CloseCode.AbnormalClosure }, 'connection missed a pong');
      ws.terminate();
      return;
    }
    this.alive = false;
    ws.ping();
  }

  /**
   * Protocol 5's own keep-alive: the text `ping`, which the client answers with `pong`
   * (a text frame, taken as a pong) and without which it closes 3005 20 s after the
   * last one. Sent besides the protocol pings, which stay the liveness check.
   */
  textPing(): void {
    const ws = this.ws;
    if (ws === undefined || this.isClosed || ws.readyState !== ws.OPEN) return;
    ws.send(TEXT_PING, { binary: false });
  }

  close(code: CloseCode, reason = closeText(code)): void {
    const ws = this.ws;
    // What was delivered goes out ahead of the close frame (a drain must not drop live-only messages).
    if (code !== CloseCode.AbnormalClosure) this.outbox.flushNow();
    this.outbox.clear();
    if (ws === undefined) {
      this.closedBeforeBind ??= { code, reason };
      this.markClosed();
      return;
    }
    // 1006 is never sent in a close frame: the socket is dropped.
    if (code === CloseCode.AbnormalClosure) ws.terminate();
    else if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) closeWithin(ws, code, reason);
  }

  protected emit(list: readonly Delivery[], grouping: 'live' | 'replay'): void {
    const frame = batchFrame(list, this.format, grouping);
    if (frame.length === 0) return;
    if (this.bufferedBytes + frame.length > this.maxOutboxBytes) {
      this.closeSlow(this.bufferedBytes + frame.length);
      return;
    }
    this.outbox.add(frame, list, grouping);
    this.account();
  }

  protected closeSlow(queuedBytes: number, limit: SlowLimit = 'connection'): void {
    const ws = this.ws;
    this.log.info({ closeCode: CloseCode.SlowClient, queueBytes: queuedBytes, limit }, 'slow client disconnected');
    this.telemetry.slowClientClosed(limit);
    this.outbox.clear();
    if (ws === undefined) {
      this.closedBeforeBind ??= { code: CloseCode.SlowClient, reason: closeText(CloseCode.SlowClient) };
      this.markClosed();
      return;
    }
    closeWithin(ws, CloseCode.SlowClient, closeText(CloseCode.SlowClient));
    this.markClosed();
  }

  protected override markClosed(): boolean {
    if (!super.markClosed()) return false;
    this.outbound?.note(-this.counted);
    this.counted = 0;
    return true;
  }

  /** Tells the budget how much this connection's queue changed since it last did. */
  private account(): void {
    if (this.outbound === undefined || this.isClosed) return;
    const bytes = this.bufferedBytes;
    const delta = bytes - this.counted;
    if (delta === 0) return;
    this.counted = bytes;
    this.outbound.note(delta);
  }
}

/** Starts the close handshake and destroys the socket if the client has not finished it in time. */
function closeWithin(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The ws server creates these (WebSocketServer `WebSocket` option): the socket knows its session. */
export class SessionSocket extends WebSocket {
  session: WsSession | undefined;
}

const sessionOf = (ws: WebSocket): WsSession | undefined => (ws as SessionSocket).session;

function onPong(this: WebSocket): void {
  sessionOf(this)?.pongReceived();
}

function onMessage(this: WebSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
  sessionOf(this)?.frameReceived(toBuffer(data), isBinary);
}

function onClose(this: WebSocket, code: number): void {
  sessionOf(this)?.socketClosed(code);
}

function onError(this: WebSocket, err: Error): void {
  sessionOf(this)?.socketFailed(err);
}
