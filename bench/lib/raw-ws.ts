import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A minimal WebSocket client on a raw TCP socket, written for the load generator:
 * it does the RFC 6455 handshake, parses unmasked server frames straight out of the
 * socket's chunks (a frame is sliced, never copied, unless it spans chunks or is
 * fragmented), answers pings and closes. No per-frame events, no UTF-8 validation,
 * no buffering beyond the frame being assembled, so it costs far less per frame than
 * a full client and the server, not the client, is what gets measured.
 */

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface RawWsHandlers {
  /** One complete message (reassembled if fragmented). The buffer is only valid during the call. */
  onMessage(payload: Buffer, binary: boolean): void;
  /** Once, however the connection ended (1006 when the socket closed without a close frame). */
  onClose?(code: number, reason: string): void;
}

export interface RawWsOptions {
  host: string;
  port: number;
  path: string;
  localAddress?: string;
  timeoutMs?: number;
}

export class HandshakeError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

export class RawWs {
  private chunks: Buffer[] = [];
  private chunksLen = 0;
  private need = 2;
  private fragments: Buffer[] | undefined;
  private fragmentBinary = false;
  private ended = false;
  closeCode = 0;
  /** Whole messages received. */
  messages = 0;

  constructor(
    readonly socket: Socket,
    private readonly handlers: RawWsHandlers,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.finish(1006, ''));
    socket.on('error', () => undefined);
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** Sends a (masked) frame: opcode 1 text, 2 binary. */
  send(data: Buffer | string, binary = typeof data !== 'string'): void {
    if (this.ended) return;
    this.socket.write(clientFrame(binary ? 2 : 1, typeof data === 'string' ? Buffer.from(data) : data));
  }

  /** Close handshake; the socket is destroyed if the server does not finish it within a second. */
  close(code = 1000): void {
    if (this.ended) return;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.socket.write(clientFrame(8, payload));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  terminate(): void {
    this.socket.destroy();
  }

  /** Feeds bytes that arrived with the handshake response. */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.onData(chunk);
  }

  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.closeCode = code;
    this.handlers.onClose?.(code, reason);
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    if (this.chunksLen + chunk.length < this.need) {
      this.chunks.push(chunk);
      this.chunksLen += chunk.length;
      return;
    }
    let buf: Buffer;
    if (this.chunksLen === 0) {
      buf = chunk;
    } else {
      this.chunks.push(chunk);
      buf = Buffer.concat(this.chunks, this.chunksLen + chunk.length);
      this.chunks = [];
      this.chunksLen = 0;
    }
    const len = buf.length;
    let o = 0;
    this.need = 2;
    for (;;) {
      const rem = len - o;
      if (rem < 2) {
        this.need = 2;
        break;
      }
      const b1 = buf[o + 1]!;
      let plen = b1 & 0x7f;
      let hdr = 2;
      if (plen === 126) {
        if (rem < 4) {
          this.need = 4;
          break;
        }
        plen = buf.readUInt16BE(o + 2);
        hdr = 4;
      } else if (plen === 127) {
        if (rem < 10) {
          this.need = 10;
          break;
        }
        plen = buf.readUInt32BE(o + 2) * 4294967296 + buf.readUInt32BE(o + 6);
        hdr = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) hdr += 4;
      if (rem < hdr + plen) {
        this.need = hdr + plen;
        break;
      }
      let payload = buf.subarray(o + hdr, o + hdr + plen);
      if (masked) {
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i]! ^= buf[o + hdr - 4 + (i & 3)]!;
      }
      const b0 = buf[o]!;
      o += hdr + plen;
      this.onFrame(b0, payload);
      if (this.ended) return;
    }
    if (o < len) {
      const rest = buf.subarray(o);
      this.chunks.push(rest);
      this.chunksLen = rest.length;
    }
  }

  private onFrame(b0: number, payload: Buffer): void {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    switch (opcode) {
      case 1:
      case 2:
        if (fin) {
          this.messages++;
          this.handlers.onMessage(payload, opcode === 2);
        } else {
          this.fragments = [Buffer.from(payload)];
          this.fragmentBinary = opcode === 2;
        }
        return;
      case 0:
        if (this.fragments === undefined) {
          this.protocolError();
          return;
        }
        this.fragments.push(Buffer.from(payload));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = undefined;
          this.messages++;
          this.handlers.onMessage(whole, this.fragmentBinary);
        }
        return;
      case 8: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.length > 2 ? payload.subarray(2).toString('utf8') : '';
        // Echo the close and let the server end the TCP connection.
        if (!this.socket.destroyed) {
          this.socket.write(clientFrame(8, payload.length >= 2 ? payload.subarray(0, 2) : Buffer.alloc(0)));
          this.socket.end();
          setTimeout(() => this.socket.destroy(), 1_000).unref();
        }
        this.finish(code, reason);
        return;
      }
      case 9:
        this.socket.write(clientFrame(10, payload));
        return;
      case 10:
        return;
      default:
        this.protocolError();
    }
  }

  private protocolError(): void {
    this.socket.destroy();
    this.finish(1002, 'protocol error');
  }
}

/** A masked client frame (payloads here are small: control frames and client requests). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 4294967296), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  const mask = randomBytes(4);
  mask.copy(out, hdr);
  for (let i = 0; i < len; i++) out[hdr + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/** Opens a connection and completes the handshake; rejects with HandshakeError on a refusal. */
export function openRawWs(opts: RawWsOptions, handlers: RawWsHandlers): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const expectedAccept = createHash('sha1').update(key + GUID).digest('base64');
    const socket = connect({ host: opts.host, port: opts.port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    socket.setNoDelay(true);
    let head: Buffer = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`handshake timed out after ${opts.timeoutMs ?? 10_000} ms`)), opts.timeoutMs ?? 10_000);
    socket.once('connect', () => {
      socket.write(
        `GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        'latin1',
      );
    });
    const onError = (err: Error): void => fail(err);
    const onClose = (): void => fail(new Error(`connection closed during the handshake${head.length ? `: ${head.toString('latin1').split('\r\n')[0]}` : ''}`));
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > 16_384) fail(new Error('handshake response too large'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      const status = Number(text.slice(9, 12));
      if (status !== 101) {
        fail(new HandshakeError(`handshake refused: ${text.split('\r\n')[0]} ${head.subarray(end + 4, end + 200).toString('latin1')}`, status));
        return;
      }
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
      if (accept !== expectedAccept) {
        fail(new Error('handshake: wrong Sec-WebSocket-Accept'));
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      const ws = new RawWs(socket, handlers);
      resolve(ws);
      ws.feed(head.subarray(end + 4));
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
