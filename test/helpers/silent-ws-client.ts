import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A WebSocket client on a raw TCP socket that completes the handshake and then never
 * writes again: it answers no close frame and no ping. A server that waits for such a
 * client's close handshake waits for its own timeout.
 */
export class SilentWsClient {
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
        if (!status.startsWith('HTTP/1.1 101 ')) {
          socket.destroy();
          reject(new Error(`handshake refused: ${status}`));
          return;
        }
        socket.on('error', () => undefined);
        // Reads and drops whatever the server sends, so only the close handshake is missing.
        socket.on('data', () => undefined);
        resolve(new SilentWsClient(socket));
      };
      socket.on('data', onData);
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** True once the server dropped the TCP connection. */
  get dropped(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
