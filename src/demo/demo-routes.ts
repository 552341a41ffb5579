import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { toClientError } from '../errors/app-error.ts';
import { withBody } from '../http/body-limit.ts';
import { parseUrl } from '../http/request.ts';
import type { Logger } from '../log/logger.ts';
import { capExpiry, type Publisher } from '../publisher/publish-command.ts';
import { channelKey, type Signer } from '../wire/channel-id.ts';
import type { DemoAssets } from './assets.ts';
import { DEMO_VERSIONS, demoUser, pullConfig, type DemoTransport, type DemoUser, type DemoVersion } from './demo-user.ts';

/** A listener of this process as bound. */
export interface BoundListener {
  readonly cfg: ListenerConfig;
  readonly address: AddressInfo;
}

/** What the demo needs from the running application; known once it has started. */
export interface DemoParts {
  readonly publisher: Publisher;
  readonly presence: { online(keys: readonly string[]): Promise<boolean[]> };
  readonly signer: Signer;
  /** security.allowedOrigins, as the public listeners apply it to the page's requests. */
  readonly origins: { allows(origin: string): boolean };
  readonly listeners: readonly BoundListener[];
  readonly messageTtlSec: number;
  readonly maxPayloadBytes: number;
}

const PREFIX = '/demo';
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
const NO_STORE = { 'Cache-Control': 'no-store' };

/**
 * The demo's routes on the internal listener (admin.demo):
 *
 * - `GET /demo`: the page; `GET /demo/client.js`: its bundle with the official client;
 * - `GET /demo/config?user=&version=&transport=`: the client config of a demo user
 *   (signed channel id, the URLs of the listener that serves subscriptions here),
 *   what a portal's `pull.application.config.get` would answer;
 * - `POST /demo/publish?user=`: publishes the body to the user's private channel as
 *   `POST /bitrix/pub/` does (`Message-Expiry`, answered once stored), with its mid;
 * - `GET /demo/online?user=`: whether the user's channel is online in the deployment.
 *
 * Only demo channels can be published to here. Until the application has started
 * the data routes answer 503.
 */
export class DemoRoutes {
  private parts: DemoParts | undefined;

  constructor(
    private readonly assets: DemoAssets,
    private readonly log: Logger,
  ) {}

  attach(parts: DemoParts): void {
    this.parts = parts;
  }

  /** Answers the request when it is for a demo route; false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path !== PREFIX && !path.startsWith(`${PREFIX}/`)) return false;
    this.serve(req, res, path.slice(PREFIX.length)).catch((err: unknown) => {
      this.log.error({ err }, 'demo request failed');
      if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
      else res.destroy();
    });
    return true;
  }

  private async serve(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    const method = req.method;
    if ((route === '' || route === '/') && method === 'GET') return send(res, 200, 'text/html; charset=utf-8', await this.assets.html(), { 'Cache-Control': 'no-cache' });
    if (route === '/client.js' && method === 'GET') {
      const script = await this.assets.client();
      if (script === undefined) return send(res, 503, 'text/plain', 'the demo client is not built: run npm run build (with the dev dependencies installed)');
      return send(res, 200, 'text/javascript; charset=utf-8', script, { 'Cache-Control': 'no-cache' });
    }
    const known = { '/config': 'GET', '/publish': 'POST', '/online': 'GET' }[route];
    if (known === undefined) return send(res, 404, 'text/plain', 'not found');
    if (method !== known) return send(res, 405, 'text/plain', 'method not allowed', { Allow: known });
    const parts = this.parts;
    if (parts === undefined) return send(res, 503, 'text/plain', 'starting', { 'Retry-After': '1' });
    const query = parseUrl(req.url).query;
    const userId = Number(query.get('user') ?? '1');
    if (!Number.isInteger(userId) || userId < 1 || userId > 2 ** 31 - 1) return send(res, 400, 'text/plain', 'user: a positive integer');
    const user = demoUser(userId, parts.signer);
    if (route === '/config') return this.config(req, res, query, user, parts);
    if (route === '/online') {
      const [online] = await parts.presence.online([channelKey({ id: user.privateId, isPrivate: true })]);
      return sendJson(res, { online: online === true });
    }
    return this.publish(req, res, user, parts);
  }

  private config(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, user: DemoUser, parts: DemoParts): void {
    const version = Number(query.get('version') ?? '4') as DemoVersion;
    if (!DEMO_VERSIONS.includes(version)) return send(res, 400, 'text/plain', `version: one of ${DEMO_VERSIONS.join(', ')}`);
    const transport = (query.get('transport') ?? 'websocket') as DemoTransport;
    if (transport !== 'websocket' && transport !== 'longpolling') return send(res, 400, 'text/plain', 'transport: websocket or longpolling');
    const sub = parts.listeners.find((l) => l.cfg.routes.sub !== undefined);
    if (sub === undefined) return send(res, 503, 'text/plain', 'this process serves no subscription route (role publisher)');
    const base = (l: BoundListener, scheme: 'http' | 'ws'): string => `${scheme}${l.cfg.ssl ? 's' : ''}://${hostOf(l, req)}:${l.address.port}`;
    const pub = parts.listeners.find((l) => l.cfg.routes.pub !== undefined);
    const pageOrigin = `http://${req.headers.host ?? ''}`;
    sendJson(res, {
      config: pullConfig(user, version, transport, { httpBase: base(sub, 'http'), wsBase: base(sub, 'ws'), subPath: sub.cfg.routes.sub! }),
      user: { userId: user.userId, privateId: user.privateId },
      // What a portal's backend would call instead of the demo's form.
      backendPublishUrl: pub === undefined ? null : `${base(pub, 'http')}${pub.cfg.routes.pub}?CHANNEL_ID=${user.privateId}`,
      // An allow-list without the page's origin refuses the client (403): the page says so instead of a silent back-off.
      pageOrigin,
      pageOriginAllowed: parts.origins.allows(pageOrigin),
    });
  }

  private publish(req: IncomingMessage, res: ServerResponse, user: DemoUser, parts: DemoParts): Promise<void> {
    // Read within the limit as on every route (413 and the connection closed past it).
    return withBody(req, res, parts.maxPayloadBytes, this.log, (body) => this.publishBody(req, res, body, user, parts));
  }

  private async publishBody(req: IncomingMessage, res: ServerResponse, body: Buffer, user: DemoUser, parts: DemoParts): Promise<void> {
    if (body.length === 0) return send(res, 400, 'text/plain', 'empty body');
    try {
      const { mids } = await parts.publisher.publish({
        receivers: [{ id: user.privateId, isPrivate: true }],
        body,
        expirySec: capExpiry(req.headers['message-expiry'], parts.messageTtlSec),
        source: 'http_text',
      });
      sendJson(res, { mid: mids[0] });
    } catch (err) {
      const e = toClientError(err);
      send(res, e.httpStatus, 'text/plain', e.message, e.temporary ? { 'Retry-After': '1' } : {});
    }
  }
}

/** The listener's address as the browser must dial it: a wildcard bind means "the host the page came from". */
function hostOf(l: BoundListener, req: IncomingMessage): string {
  let host = l.cfg.hostname;
  if (WILDCARD_HOSTS.has(host)) host = new URL(`http://${req.headers.host ?? '127.0.0.1'}`).hostname;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

function sendJson(res: ServerResponse, value: unknown): void {
  send(res, 200, 'application/json', JSON.stringify(value), NO_STORE);
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...NO_STORE, ...headers }).end(body);
}
