import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.ts';
import type { Registry } from 'prom-client';
import { hasBody, onRefusedConnection, withBody } from './body-limit.ts';
import { ListenError } from './listen-error.ts';

export interface AdminChecks {
  /** Why the process should not get traffic now, or undefined when ready. */
  notReady(): string | undefined;
  registry: Registry;
  /** limits.maxPayloadBytes: no route here takes a body, but a body is bounded as on every listener. */
  maxBodyBytes: number;
}

const ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/** More routes on the internal listener (the demo): answers and returns true when the request is theirs. */
export interface AdminRoutes {
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean;
}

/**
 * The internal listener (admin.hostname:admin.port): `/healthz` answers while the
 * process runs, `/readyz` while it should get traffic (NATS connected, streams
 * ensured, not draining), `/metrics` in Prometheus text format; `extra` routes
 * (admin.demo) are asked first.
 */
export class AdminListener {
  private readonly server: Server;

  constructor(
    private readonly hostname: string,
    private readonly port: number,
    checks: AdminChecks,
    private readonly log: Logger,
    extra?: AdminRoutes,
  ) {
    this.server = createServer((req, res) => {
      if (onRefusedConnection(req)) return;
      const path = (req.url ?? '/').split('?')[0]!;
      // The demo's routes read their own bodies, within the same limit (body-limit.ts).
      if (extra?.handle(req, res, path)) return;
      if (!hasBody(req)) return this.route(req, res, path, checks);
      withBody(req, res, checks.maxBodyBytes, log, () => this.route(req, res, path, checks)).catch((err: unknown) => {
        log.debug({ err }, 'admin request body failed');
        res.destroy();
      });
    });
  }

  private route(req: IncomingMessage, res: ServerResponse, path: string, checks: AdminChecks): void {
    if (!ROUTES.has(path)) {
      res.writeHead(404).end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const reason = checks.notReady();
      res.writeHead(reason === undefined ? 200 : 503, { 'Content-Type': 'text/plain' }).end(`${reason ?? 'ready'}\n`);
      return;
    }
    if (path === '/metrics') {
      checks.registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': checks.registry.contentType }).end(text),
        (err: unknown) => {
          this.log.error({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
    }
  }

  /** The bound address, once listening. */
  get address(): AddressInfo | undefined {
    return (this.server.address() as AddressInfo | null) ?? undefined;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new ListenError(`admin listener: ${this.hostname}:${this.port} is in use; set admin.port (PUSH_ADMIN__PORT) to a free port, 0 for any, or -1 to turn it off`, err) : err),
      );
      this.server.listen({ port: this.port, host: this.hostname }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.log.info({ address: address.address, port: address.port }, 'admin listening');
    return address;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
