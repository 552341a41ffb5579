import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay to a nats-server that can lose request replies: once armed, the next
 * reply to a client inbox (`MSG _INBOX.…`) is not passed on; the client's connection
 * is cut instead, after the server got and answered the request. The client
 * reconnects through the relay and carries on.
 */
export class NatsReplyLoss {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private armed = 0;
  /** Replies lost so far. */
  lost = 0;
  port = 0;

  private constructor(targetPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (this.armed > 0 && /(^|\n)MSG _INBOX\./.test(chunk.toString('latin1'))) {
          this.armed--;
          this.lost++;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
    });
  }

  static async start(targetPort: number): Promise<NatsReplyLoss> {
    const relay = new NatsReplyLoss(targetPort);
    await new Promise<void>((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.port = (relay.server.address() as { port: number }).port;
    return relay;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  loseReplies(n: number): void {
    this.armed = n;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
