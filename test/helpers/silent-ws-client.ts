import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A WebSocket client on a raw TCP socket that completes the handshake and then never
 * writes again: no close reply, no pong. A gateway that waits for the close handshake
 * of such a client waits for its own timeout.
 */
export class SilentWsClient {
  /** Close frames received from the server, with their status codes. */
  readonly closeCodes: number[] = [];
  private buffer = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {}

  static open(url: string, timeoutMs = 5_000): Promise<SilentWsClient> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(u.port || 80), u.hostname);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`handshake with ${u.host} timed out`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`handshake refused: ${status}`));
          return;
        }
        const client = new SilentWsClient(socket);
        socket.on('error', () => undefined);
        socket.on('data', (c: Buffer) => client.read(c));
        client.read(head.subarray(end + 4));
        resolve(client);
      };
      socket.on('data', onData);
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  /** Server frames are unmasked: FIN/opcode byte, length (7, 16 or 64 bits), payload. */
  private read(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.buffer.length < 2) return;
      const opcode = this.buffer[0]! & 0x0f;
      let len = this.buffer[1]! & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + len) return;
      const payload = this.buffer.subarray(offset, offset + len);
      if (opcode === 0x8) this.closeCodes.push(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
      this.buffer = this.buffer.subarray(offset + len);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
