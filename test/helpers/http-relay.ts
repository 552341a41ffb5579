import { createServer, request, type IncomingMessage, type Server } from 'node:http';

/**
 * An HTTP relay in front of a server that counts what passes and can lose answers:
 * with `loseAnswers(n)` the next n requests reach the server, which handles and
 * answers them, but the client's connection is destroyed instead of getting the answer
 * (a response lost on the way back).
 */
export class HttpRelay {
  private readonly server: Server;
  private toLose = 0;
  /** Every request relayed, in order, with the status the server answered. */
  readonly seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; status: number; lost: boolean }> = [];
  port = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((req, res) => {
      const upstream = request({ ...target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        const lost = this.toLose > 0;
        if (lost) this.toLose--;
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, status: answer.statusCode ?? 0, lost });
        if (lost) {
          answer.resume();
          answer.once('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => req.socket.destroy());
      req.pipe(upstream);
    });
  }

  static async start(targetPort: number, host = '127.0.0.1'): Promise<HttpRelay> {
    const relay = new HttpRelay({ host, port: targetPort });
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.port = (relay.server.address() as { port: number }).port;
    return relay;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  loseAnswers(n: number): void {
    this.toLose = n;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
