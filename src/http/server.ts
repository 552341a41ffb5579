import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { DEFAULT_ROUTES, type ListenerConfig } from '../config/schema.ts';
import { SessionSocket } from '../gateway/ws-session.ts';
import type { Logger } from '../log/logger.ts';
import { sendNotFound, sendPlain, sendPreflight } from '../wire/http-replies.ts';
import { ListenError } from './listen-error.ts';
import type { OriginPolicy } from './origin-policy.ts';
import type { PublishSignature } from './publish-signature.ts';
import { readTlsOptions } from './tls.ts';
import { closeAfterAnswer, hasBody, onRefusedConnection, withBody } from './body-limit.ts';
import { parseUrl, type ParsedUrl } from './request.ts';
import { handleChannelStats, type ChannelStatsDeps } from './routes/channel-stats.ts';
import type { RpcMethods } from '../gateway/client-requests.ts';
import { handleBackendRpc, type BackendRpcRouteDeps } from './routes/backend-json-rpc.ts';
import { handleRpcPost, isJsonRpcBody } from './routes/json-rpc.ts';
import { handleProtobufRequest } from './routes/protobuf.ts';
import { handleTextPublish, type PublishDeps } from './routes/publish.ts';
import { handleServerStat } from './routes/server-stat.ts';
import { handleLongPoll, handleUpgrade, refuse, type SubscribeDeps } from './routes/subscribe.ts';
import type { ProtobufRequests } from '../api/protobuf-requests.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import type { ServerStatsReporter } from '../stats/server-stats.ts';
import type { ChannelIdParser } from '../wire/channel-id.ts';
import { channelKey, firstPublicId, receiversOf } from '../wire/channel-id.ts';
import { CloseCode } from '../errors/close-codes.ts';
import { sendPushError, sendTooManyRequests } from '../wire/http-replies.ts';
import { addressKey, type ClientAddress } from './client-address.ts';
import { single } from './request.ts';
import type { ClientRate } from '../api/client-rate.ts';

/** What each route needs; a route whose handler is absent is not served by this process. */
export interface RouteHandlers {
  /** `sub`: WebSocket and long polling. */
  subscribe?: Omit<SubscribeDeps, 'wss'>;
  /** `pub`: trusted text and protobuf publishing, and channel stats. */
  publish?: PublishDeps & { requests: ProtobufRequests; channelStats: ChannelStatsDeps; signature: PublishSignature };
  /** `rest`: untrusted client requests. */
  rest?: { requests: ProtobufRequests; rpc: RpcMethods; parser: ChannelIdParser; rate: ClientRate; addresses: ClientAddress };
  /** `stat`: server statistics. */
  stat?: { reporter: ServerStatsReporter; counters: DailyCounters };
  /** `api`: protocol 5 portals' JSON-RPC. */
  api?: BackendRpcRouteDeps;
  maxPayloadBytes: number;
  /** Origins whose pages may use `sub` and `rest` (security.allowedOrigins). */
  origins: OriginPolicy;
}

/** Long polling through nginx arrives as /bitrix/sub/; served directly too, so no proxy is needed. */
const SUB_ALIAS = '/bitrix/sub/';
const EMPTY_BODY = Buffer.alloc(0);

/** What a route does with the request's body, once read within the limit. */
type Handler = (body: Buffer) => void;

/**
 * One HTTP(S) listener of `servers[]`, serving the routes its config names.
 * HTTP routes match by prefix of the request URL, per method; WebSocket upgrades
 * match the exact path (spec §1.2). Anything else is 404.
 */
export class Listener {
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly subPaths: string[];
  private readonly log: Logger;

  constructor(
    readonly cfg: ListenerConfig,
    private readonly handlers: RouteHandlers,
    log: Logger,
  ) {
    this.log = log.child({ listener: cfg.name ?? `${cfg.hostname}:${cfg.port}` });
    const sub = cfg.routes.sub;
    this.subPaths = sub === undefined ? [] : sub === DEFAULT_ROUTES.sub ? [sub, SUB_ALIAS] : [sub];
    this.wss = new WebSocketServer({
      noServer: true,
      WebSocket: SessionSocket,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: handlers.maxPayloadBytes,
    });
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.onRequest(req, res);
    this.server = cfg.ssl ? createHttpsServer(readTlsOptions(cfg.ssl), onRequest) : createHttpServer(onRequest);
    this.server.keepAliveTimeout = 65_000;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.log.debug({ err }, 'bad http request');
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new ListenError(`listener ${this.cfg.name ?? ''} ${this.cfg.hostname}:${this.cfg.port} is in use; change its port in servers[] (PUSH_PORT, PUSH_PUB_PORT)`, err) : err),
      );
      this.server.listen({ port: this.cfg.port, host: this.cfg.hostname, backlog: this.cfg.backlog }, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.log.info({ address: address.address, port: address.port, routes: this.cfg.routes, tls: Boolean(this.cfg.ssl) }, 'listening');
    return address;
  }

  /** Stops accepting; open connections are closed by their owners (gateway, publisher). */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
    this.wss.close();
  }

  /**
   * Reads the TLS files again (SIGHUP): new connections get the renewed certificate,
   * open ones keep theirs. Unreadable or mismatched files leave the current one in use.
   */
  reloadTls(): void {
    if (!this.cfg.ssl) return;
    try {
      (this.server as import('node:https').Server).setSecureContext(readTlsOptions(this.cfg.ssl));
      this.log.info({ cert: this.cfg.ssl.cert }, 'tls certificate reloaded');
    } catch (err) {
      this.log.error({ err, cert: this.cfg.ssl.cert }, 'tls certificate reload failed, the previous one stays in use');
    }
  }

  /** Ends connections still open (after the owners had their chance). */
  destroyConnections(): void {
    this.server.closeAllConnections();
  }

  /**
   * The route is chosen first (an origin it refuses is answered without reading the
   * body), then every body is read within limits.maxPayloadBytes, whatever the route:
   * a body over it is always a 413 with the connection closed (body-limit.ts).
   */
  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (onRefusedConnection(req)) return;
    const handle = this.route(req, res);
    if (handle === undefined) return;
    if (!hasBody(req)) return handle(EMPTY_BODY);
    this.run(withBody(req, res, this.handlers.maxPayloadBytes, this.log, handle), res);
  }

  /** The handler for the request, or undefined when it was answered already (origin refused). */
  private route(req: IncomingMessage, res: ServerResponse): Handler | undefined {
    const url = parseUrl(req.url);
    const raw = req.url ?? '/';
    const routes = this.cfg.routes;
    const { subscribe, publish, rest, stat, api } = this.handlers;
    const method = req.method;
    if (subscribe && this.matchesSub(raw)) {
      if (method === 'OPTIONS') return () => sendPreflight(res);
      if (method === 'GET') {
        if (!this.originAllowed(req)) return this.refuseOrigin(req, res);
        return () => this.run(handleLongPoll(req, res, url, { ...subscribe, wss: this.wss }), res);
      }
    }
    if (publish && routes.pub !== undefined && raw.startsWith(routes.pub)) {
      if (method === 'POST') {
        const binary = single(url.query, 'binaryMode') === 'true';
        return (body) => {
          if (!publish.signature.acceptsBody(url.query, body)) return this.refuseSignature(res, method, publish.log);
          this.run(
            binary
              ? handleProtobufRequest(res, body, { trusted: true }, publish.requests, publish.log)
              : handleTextPublish(req, res, url, body, publish),
            res,
          );
        };
      }
      if (method === 'GET') {
        return () => {
          if (!publish.signature.acceptsChannelStats(url.query)) return this.refuseSignature(res, method, publish.log);
          this.run(handleChannelStats(res, url, publish.channelStats), res);
        };
      }
    }
    if (rest && routes.rest !== undefined && raw.startsWith(routes.rest) && method === 'POST') {
      if (!this.originAllowed(req)) return this.refuseOrigin(req, res);
      // By address next: it costs nothing, the CHANNEL_ID costs an HMAC. The body is not read.
      // The address the connection limits count too (security.trustedProxies behind a proxy).
      const wait = rest.rate.restAddress(addressKey(rest.addresses.of(req)));
      if (wait > 0) {
        closeAfterAnswer(req, res);
        sendTooManyRequests(res, wait, { Connection: 'close' });
        return undefined;
      }
      return (body) => this.run(this.clientRequest(res, url, body, rest), res);
    }
    if (api && routes.api !== undefined && raw.startsWith(routes.api) && method === 'POST') {
      return (body) => this.run(handleBackendRpc(res, url, body, api), res);
    }
    if (stat && routes.stat !== undefined && raw.startsWith(routes.stat) && method === 'GET') {
      return () => this.run(handleServerStat(res, stat.reporter, stat.counters), res);
    }
    return () => sendNotFound(res);
  }

  /** `POST /bitrix/rest/?CHANNEL_ID=…`: a client request, signed like a subscription. */
  private async clientRequest(res: ServerResponse, url: ParsedUrl, body: Buffer, rest: NonNullable<RouteHandlers['rest']>): Promise<void> {
    const raw = single(url.query, 'CHANNEL_ID');
    const tokens = rest.parser.parse(typeof raw === 'string' ? raw : null, 'subscribe');
    if (tokens === null) return sendPushError(res, CloseCode.WrongChannelId);
    const publicId = firstPublicId(tokens);
    const wait = publicId === undefined ? 0 : rest.rate.restRequest(publicId);
    if (wait > 0) return sendTooManyRequests(res, wait);
    if (isJsonRpcBody(body)) return handleRpcPost(res, body, { keys: receiversOf(tokens).map(channelKey), publicId }, rest.rpc, this.log);
    await handleProtobufRequest(res, body, { trusted: false, publicId: firstPublicId(tokens) }, rest.requests, this.log);
  }

  /** One listener for every upgraded socket, not a closure each. */
  private readonly onSocketError = (err: Error): void => this.log.debug({ err }, 'socket error during upgrade');

  /** security.signedPublishing: 400 "4026: Wrong request signature.", nothing published or read. */
  private refuseSignature(res: ServerResponse, method: string, log: Logger): void {
    log.info({ method, closeCode: CloseCode.WrongRequestSignature }, 'request refused');
    sendPushError(res, CloseCode.WrongRequestSignature);
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', this.onSocketError);
    const url = parseUrl(req.url);
    const subscribe = this.handlers.subscribe;
    if (subscribe === undefined || !this.subPaths.includes(url.pathname) || req.method !== 'GET') {
      refuse(socket, 400, 'Bad Request', 'Bad Request');
      return;
    }
    if (!this.originAllowed(req)) {
      refuse(socket, 403, 'Forbidden', 'origin not allowed');
      return;
    }
    handleUpgrade(req, socket, head, url, { ...subscribe, wss: this.wss }).catch((err: unknown) => {
      this.log.error({ err }, 'upgrade failed');
      refuse(socket, 500, 'Internal Server Error', 'Internal Server Error');
    });
  }

  private originAllowed(req: IncomingMessage): boolean {
    if (this.handlers.origins.allows(req.headers.origin)) return true;
    this.log.info({ origin: req.headers.origin }, 'origin refused');
    return false;
  }

  /**
   * 403 from another site's page. A request with a body is not read: the connection is
   * closed, and nothing that follows on it is handled.
   */
  private refuseOrigin(req: IncomingMessage, res: ServerResponse): undefined {
    if (!hasBody(req)) {
      sendPlain(res, 403, 'origin not allowed');
      return undefined;
    }
    closeAfterAnswer(req, res);
    sendPlain(res, 403, 'origin not allowed', { Connection: 'close' });
    return undefined;
  }

  private matchesSub(rawUrl: string): boolean {
    for (const p of this.subPaths) if (rawUrl.startsWith(p)) return true;
    return false;
  }

  private run(work: Promise<void>, res: ServerResponse): void {
    work.catch((err: unknown) => {
      this.log.error({ err }, 'request failed');
      if (!res.headersSent) sendPlain(res, 500, 'internal error');
      else res.destroy();
    });
  }
}
