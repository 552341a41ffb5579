import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay to a server, which a test can cut: every relayed connection is
 * destroyed and new ones are refused until `restore()`. Lets one client lose its
 * NATS connection while the server and other clients carry on. It can also hold
 * back what the server sends (a lost acknowledgement, as the client sees it) while
 * the client's requests still go through, and count a text in what clients send.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private blocked = false;
  /** Server-to-client bytes waiting while replies are held, per client socket. */
  private held: Map<Socket, Buffer[]> | undefined;
  private readonly watches = new Set<{ text: string; tail: string; count: number }>();
  port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        this.scan(chunk);
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        const held = this.held;
        if (held === undefined) client.write(chunk);
        else held.set(client, [...(held.get(client) ?? []), chunk]);
      });
    });
  }

  /** From now on, what servers send waits in the proxy until `releaseReplies()`. */
  holdReplies(): void {
    this.held ??= new Map();
  }

  /** Delivers what was held, in order, and relays again. */
  releaseReplies(): void {
    const held = this.held;
    this.held = undefined;
    for (const [client, chunks] of held ?? []) for (const c of chunks) client.write(c);
  }

  /** How often `text` passes from clients to the server from now on (read the returned function). */
  countSent(text: string): () => number {
    const watch = { text, tail: '', count: 0 };
    this.watches.add(watch);
    return () => watch.count;
  }

  private scan(chunk: Buffer): void {
    if (this.watches.size === 0) return;
    const s = chunk.toString('latin1');
    for (const w of this.watches) {
      // The tail keeps a text cut in two by a chunk boundary.
      const hay = w.tail + s;
      for (let i = hay.indexOf(w.text); i !== -1; i = hay.indexOf(w.text, i + 1)) w.count++;
      w.tail = hay.slice(Math.max(0, hay.length - (w.text.length - 1)));
    }
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as { port: number }).port;
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
