import { WebSocket as WsClient } from 'ws';
import { Listeners, type Listener } from './listeners.ts';
import { PAGE_ORIGIN } from './page.ts';
import { copyBytes, tapFor, type LiveSocket, type Tap } from './tap.ts';

const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/**
 * The browser WebSocket as the pull client uses it (constructor, `binaryType`,
 * add/removeEventListener, `readyState`, `send`, `close`), over `ws`, sending the
 * page's Origin.
 *
 * The `ws` socket is only created once the client's tap lets the connection
 * through, so a reconnection can be held back. It always has an 'error' listener:
 * close() on a CONNECTING `ws` socket emits 'error' after the client has removed
 * its own listeners, and an unhandled 'error' ends the process (official-client.md §9.2).
 */
export class NodeWebSocket implements LiveSocket {
  readonly url: string;
  /** The client sets 'arraybuffer'; binary messages are always delivered as ArrayBuffer. */
  binaryType = 'arraybuffer';

  private inner: WsClient | null = null;
  /** readyState while there is no `ws` socket yet. */
  private ownState = CONNECTING;
  private readonly tap: Tap | undefined;
  private readonly listeners = new Listeners((err) => this.tap?.handlerErrors.push(err));

  constructor(url: string | URL) {
    this.url = String(url);
    this.tap = tapFor(this.url);
    this.tap?.sockets.add(this);
    this.tap?.connections.push({ transport: 'websocket', url: this.url });
    const held = this.tap?.whenReleased();
    if (held) void held.then(() => this.connect());
    else this.connect();
  }

  get readyState(): number {
    return this.inner ? this.inner.readyState : this.ownState;
  }

  get isOpen(): boolean {
    return this.readyState === OPEN;
  }

  addEventListener(type: string, fn: Listener): void {
    this.listeners.add(type, fn);
  }

  removeEventListener(type: string, fn: Listener): void {
    this.listeners.remove(type, fn);
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (!this.inner || this.inner.readyState === CONNECTING) {
      throw new Error("Failed to execute 'send' on 'WebSocket': Still in CONNECTING state.");
    }
    const frame = typeof data === 'string' ? { data, binary: false } : { data: copyBytes(data), binary: true };
    this.tap?.sentFrames.push({ transport: 'websocket', ...frame });
    this.inner.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.inner) {
      this.inner.close(code, reason);
      return;
    }
    // Still held back: the connection fails, as in a browser.
    if (this.ownState === CLOSED) return;
    this.ownState = CLOSED;
    setImmediate(() => {
      this.listeners.dispatch({ type: 'error', target: this });
      this.onClosed(1006, '');
    });
  }

  /** Drops the TCP connection without a close frame: the client sees 1006. */
  terminate(): void {
    if (this.inner) this.inner.terminate();
    else this.close();
  }

  private connect(): void {
    if (this.ownState === CLOSED) return;
    const ws = new WsClient(this.url, { origin: PAGE_ORIGIN });
    this.inner = ws;
    ws.on('error', () => this.listeners.dispatch({ type: 'error', target: this }));
    ws.on('open', () => this.listeners.dispatch({ type: 'open', target: this }));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.tap?.frames.push({ transport: 'websocket', data: isBinary ? Buffer.from(data) : data.toString('utf8'), binary: isBinary });
      const payload = isBinary ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8');
      this.listeners.dispatch({ type: 'message', target: this, data: payload });
    });
    ws.on('close', (code: number, reason: Buffer) => this.onClosed(code, reason.toString('utf8')));
  }

  private onClosed(code: number, reason: string): void {
    this.tap?.closes.push({ code, reason });
    this.tap?.sockets.delete(this);
    this.listeners.dispatch({ type: 'close', target: this, code, reason });
  }
}
