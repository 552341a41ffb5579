import { WebSocket } from 'ws';
import { CloseCode, closeText } from '../errors/close-codes.ts';
import { batchFrame, type Delivery } from './delivery.ts';
import { Session, type SessionOptions } from './session.ts';

export interface WsSessionOptions extends SessionOptions {
  coalesceWindowMs: number;
  /** Client frames handled at once; while that many are in hand the socket is not read. */
  maxRequestsInFlight: number;
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
/** The coalescing window batches small messages; once this much waits, it is sent at once. */
const COALESCE_FLUSH_BYTES = 64 * 1024;

/**
 * A WebSocket connection. Coalescing as the reference does it: the first message
 * after a quiet period is written at once, later ones within `coalesceWindowMs` are
 * sent together as one frame when the window ends. Unsent chunks plus the socket's
 * own buffer are bounded by `maxOutboxBytes`; a client that stops reading is closed
 * (4008) instead of holding memory. Nothing is dropped while a ping is unanswered.
 */
export class WsSession extends Session {
  private ws: WebSocket | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingMessages = 0;
  private windowTimer: NodeJS.Timeout | undefined;
  /** False after a ping is sent, true again when the pong comes back. */
  alive = true;
  private readonly coalesceWindowMs: number;
  private readonly isBinary: boolean;
  framesSent = 0;
  /** Handler for frames the client sends (binary mode requests); set by the gateway. */
  onClientFrame: ((session: WsSession, data: Buffer, isBinary: boolean) => Promise<void>) | undefined;
  private readonly maxRequestsInFlight: number;
  /** Client frames waiting for a slot (created on the first one: most clients never send). */
  private requests: ClientFrame[] | undefined;
  private requestsRunning = 0;
  /** Called on every pong: the connection is alive (presence refresh). */
  onPong: ((session: WsSession) => void) | undefined;

  constructor(opts: WsSessionOptions) {
    super('ws', opts);
    this.coalesceWindowMs = opts.coalesceWindowMs;
    this.isBinary = opts.format === 'binary';
    this.maxRequestsInFlight = opts.maxRequestsInFlight;
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
    if (this.pending.length > 0 && this.windowTimer === undefined) this.flush();
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
    if (!this.isBinary || this.onClientFrame === undefined || this.isClosed) return;
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
    this.clearWindow();
    if (this.markClosed()) this.log.debug({ closeCode: code, durationMs: Date.now() - this.openedAt }, 'connection closed');
  }

  /** @internal */
  socketFailed(err: Error): void {
    this.log.info({ err }, 'connection error');
  }

  get bufferedBytes(): number {
    return this.pendingBytes + (this.ws?.bufferedAmount ?? 0);
  }

  /** A reply to a client request, as its own frame, ahead of anything waiting in the window. */
  sendNow(frame: Buffer): void {
    const ws = this.ws;
    if (ws === undefined || this.isClosed || ws.readyState !== ws.OPEN) return;
    ws.send(frame, { binary: true });
    this.framesSent++;
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

  close(code: CloseCode, reason = closeText(code)): void {
    const ws = this.ws;
    this.clearWindow();
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
    if (this.bufferedBytes + frame.length > this.maxOutboxBytes) {
      this.closeSlow(this.bufferedBytes + frame.length);
      return;
    }
    this.pendingMessages += list.length;
    if (grouping === 'replay' || this.coalesceWindowMs === 0) {
      // A replay is one frame of its own; what waits in the window follows it.
      this.pending.unshift(frame);
      this.pendingBytes += frame.length;
      this.flush();
      return;
    }
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    if (this.windowTimer === undefined || this.pendingBytes >= COALESCE_FLUSH_BYTES) this.flush();
  }

  protected closeSlow(queuedBytes: number): void {
    const ws = this.ws;
    this.log.info({ closeCode: CloseCode.SlowClient, queueBytes: queuedBytes }, 'slow client disconnected');
    this.telemetry.slowClientClosed();
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    this.clearWindow();
    if (ws === undefined) {
      this.closedBeforeBind ??= { code: CloseCode.SlowClient, reason: closeText(CloseCode.SlowClient) };
      this.markClosed();
      return;
    }
    closeWithin(ws, CloseCode.SlowClient, closeText(CloseCode.SlowClient));
    this.markClosed();
  }

  /** Writes everything pending as one frame and opens the coalescing window. */
  private flush(): void {
    const ws = this.ws;
    if (ws === undefined || this.pending.length === 0 || ws.readyState !== ws.OPEN) return;
    const frame = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.telemetry.delivered(this.pendingMessages, frame.length);
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingMessages = 0;
    ws.send(frame, { binary: this.isBinary });
    this.framesSent++;
    this.clearWindow();
    if (this.coalesceWindowMs > 0) {
      this.windowTimer = setTimeout(() => this.onWindowEnd(), this.coalesceWindowMs);
    }
  }

  private onWindowEnd(): void {
    this.windowTimer = undefined;
    if (this.pending.length > 0) this.flush();
  }

  private clearWindow(): void {
    if (this.windowTimer !== undefined) {
      clearTimeout(this.windowTimer);
      this.windowTimer = undefined;
    }
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
