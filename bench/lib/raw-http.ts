import { connect, type Socket } from 'node:net';

/**
 * A small HTTP/1.1 keep-alive client on raw sockets: one request at a time per
 * connection, responses parsed just enough (status, header block, Content-Length or
 * chunked body). It exists so the load generator spends its CPU on load, not on
 * the general-purpose client, and so every socket can be bound to a chosen loopback
 * source address.
 */

export interface HttpResponse {
  status: number;
  /** The raw header block (status line included), latin1. */
  head: string;
  body: Buffer;
}

/** Value of a header in a raw header block, case-insensitive; undefined when absent. */
export function headerValue(head: string, name: string): string | undefined {
  const re = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r\\n]*)`, 'i');
  return re.exec(head)?.[1];
}

interface Pending {
  resolve: (r: HttpResponse) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
  isHead: boolean;
}

export class HttpConn {
  private socket: Socket | undefined;
  private connected: Promise<void> | undefined;
  private pending: Pending | undefined;
  private buf: Buffer | undefined;
  private headEnd = -1;
  private status = 0;
  private head = '';
  private bodyLength = -1;
  private chunked = false;
  private closeAfter = false;
  /** Number of TCP connections this client opened (1 unless the server closed one). */
  connects = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly localAddress?: string,
  ) {}

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Opens the TCP connection now (otherwise the first request does). */
  connect(timeoutMs = 10_000): Promise<void> {
    if (this.socket && !this.socket.destroyed && this.connected) return this.connected;
    const socket = connect({ host: this.host, port: this.port, ...(this.localAddress ? { localAddress: this.localAddress } : {}) });
    socket.setNoDelay(true);
    this.socket = socket;
    this.connects++;
    this.connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    this.connected.catch(() => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.socket === socket) {
        this.socket = undefined;
        this.connected = undefined;
      }
      this.fail(new Error('connection closed'));
    });
    return this.connected;
  }

  /**
   * Sends one request (`head` without the final blank line is not accepted: pass the
   * whole request text, plus an optional binary body written after it).
   */
  async request(head: string, body?: Buffer, timeoutMs = 30_000): Promise<HttpResponse> {
    if (this.pending) throw new Error('HttpConn: one request at a time');
    if (!this.socket || this.socket.destroyed) await this.connect();
    else await this.connected;
    const socket = this.socket;
    if (!socket) throw new Error('connection closed');
    return new Promise<HttpResponse>((resolve, reject) => {
      this.pending = {
        resolve,
        reject,
        isHead: head.startsWith('HEAD '),
        timer: setTimeout(() => {
          socket.destroy();
          this.fail(new Error(`request timed out after ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.resetParser();
      if (body === undefined) {
        socket.write(head, 'latin1');
      } else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.connected = undefined;
  }

  private resetParser(): void {
    this.buf = undefined;
    this.headEnd = -1;
    this.status = 0;
    this.head = '';
    this.bodyLength = -1;
    this.chunked = false;
    this.closeAfter = false;
  }

  private fail(err: Error): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    p.reject(err);
  }

  private onData(chunk: Buffer): void {
    if (!this.pending) return; // unsolicited bytes: ignore
    this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    const buf = this.buf;
    if (this.headEnd === -1) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.headEnd = end + 4;
      this.head = buf.toString('latin1', 0, end);
      this.status = Number(this.head.slice(9, 12));
      const lower = this.head.toLowerCase();
      this.closeAfter = lower.includes('\r\nconnection: close');
      const noBody = this.pending.isHead || this.status === 304 || this.status === 204 || (this.status >= 100 && this.status < 200);
      if (noBody) {
        this.bodyLength = 0;
      } else {
        const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
        if (cl) this.bodyLength = Number(cl[1]);
        else if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) this.chunked = true;
        else this.bodyLength = -2; // until close
      }
    }
    if (this.chunked) {
      const body = decodeChunked(buf, this.headEnd);
      if (body !== undefined) this.complete(body);
      return;
    }
    if (this.bodyLength >= 0 && buf.length - this.headEnd >= this.bodyLength) {
      this.complete(buf.subarray(this.headEnd, this.headEnd + this.bodyLength));
    }
  }

  private complete(body: Buffer): void {
    const p = this.pending!;
    this.pending = undefined;
    if (p.timer) clearTimeout(p.timer);
    const res: HttpResponse = { status: this.status, head: this.head, body };
    if (this.closeAfter) this.close();
    this.resetParser();
    p.resolve(res);
  }
}

/** The body of a complete chunked message starting at `start`, or undefined while incomplete. */
function decodeChunked(buf: Buffer, start: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let o = start;
  for (;;) {
    const eol = buf.indexOf('\r\n', o);
    if (eol === -1) return undefined;
    const size = parseInt(buf.toString('latin1', o, eol), 16);
    if (!Number.isFinite(size)) throw new Error('bad chunk size');
    if (size === 0) {
      // No trailers are expected: the message ends with the blank line after "0".
      return buf.length >= eol + 4 ? Buffer.concat(parts) : undefined;
    }
    if (buf.length < eol + 2 + size + 2) return undefined;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    o = eol + 2 + size + 2;
  }
}

/** Connections shared by concurrent requests: an idle one is used, else the request queues. */
export class HttpPool {
  private readonly conns: HttpConn[];
  private readonly idle: HttpConn[];
  private readonly queue: Array<(conn: HttpConn) => void> = [];
  inFlight = 0;

  constructor(host: string, port: number, size: number, localAddresses: readonly string[] = []) {
    this.conns = Array.from(
      { length: size },
      (_, i) => new HttpConn(host, port, localAddresses.length > 0 ? localAddresses[i % localAddresses.length] : undefined),
    );
    this.idle = [...this.conns];
  }

  get size(): number {
    return this.conns.length;
  }

  async request(head: string, body?: Buffer, timeoutMs?: number): Promise<HttpResponse> {
    const conn = this.idle.pop() ?? (await new Promise<HttpConn>((r) => this.queue.push(r)));
    this.inFlight++;
    try {
      return await conn.request(head, body, timeoutMs);
    } finally {
      this.inFlight--;
      const waiter = this.queue.shift();
      if (waiter) waiter(conn);
      else this.idle.push(conn);
    }
  }

  close(): void {
    for (const c of this.conns) c.close();
  }
}
