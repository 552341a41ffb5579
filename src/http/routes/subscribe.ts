import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { GatewayActor, SubscribeRequest } from '../../gateway/gateway-actor.ts';
import type { SessionSocket } from '../../gateway/ws-session.ts';
import type { Logger } from '../../log/logger.ts';
import { pullTokenChannels, type ChannelIdParser } from '../../wire/channel-id.ts';
import { bareReason, CloseCode } from '../../errors/close-codes.ts';
import { REFUSAL_REPLIES } from '../../errors/refusals.ts';
import { rawHandshakeRefusal, sendPlain, sendPushError } from '../../wire/http-replies.ts';
import { addressKey, type ClientAddress } from '../client-address.ts';
import { single, type ParsedUrl } from '../request.ts';

export interface SubscribeDeps {
  gateway: GatewayActor;
  parser: ChannelIdParser;
  wss: WebSocketServer;
  maxChannelsPerConnection: number;
  /** Who the client is behind trusted proxies (security.trustedProxies). */
  clientAddress: ClientAddress;
  log: Logger;
}

/**
 * GET on the subscription route: CHANNEL_ID verified as spec §2.4, `binaryMode=true`
 * selects protobuf and `jsonRpc=true` protocol 5's JSON-RPC, `token=<jwt>` (protocol 5,
 * without CHANNEL_ID) names the channels instead, `mid` asks for a replay; every other parameter (tag, time,
 * revision, rnd, clientId, …) is ignored.
 */
function subscribeRequest(req: IncomingMessage, url: ParsedUrl, deps: SubscribeDeps): SubscribeRequest | null {
  const raw = single(url.query, 'CHANNEL_ID');
  // Protocol 5 clients given a JWT send it instead of CHANNEL_ID.
  const jwt = raw === null ? single(url.query, 'token') : null;
  const pull = jwt === null ? undefined : deps.parser.readPullToken(jwt);
  const tokens = jwt === null ? deps.parser.parse(typeof raw === 'string' ? raw : null, 'subscribe') : pull === undefined ? null : pullTokenChannels(pull);
  if (tokens === null || tokens.length > deps.maxChannelsPerConnection) return null;
  const mid = single(url.query, 'mid');
  return {
    tokens,
    format: single(url.query, 'jsonRpc') === 'true' ? 'jsonrpc' : single(url.query, 'binaryMode') === 'true' ? 'binary' : 'text',
    mid: typeof mid === 'string' ? mid : undefined,
    address: addressKey(deps.clientAddress.of(req)),
    ...(pull === undefined ? {} : { hostId: pull.hostId, userId: pull.userId }),
  };
}

/** Long polling: held until a message, the replay, or the 304 timeout answers it. */
export async function handleLongPoll(
  req: IncomingMessage,
  res: ServerResponse,
  url: ParsedUrl,
  deps: SubscribeDeps,
): Promise<void> {
  const sub = subscribeRequest(req, url, deps);
  if (sub === null) {
    deps.log.info({ transport: 'longpoll', closeCode: CloseCode.WrongChannelId }, 'subscription refused');
    sendPushError(res, CloseCode.WrongChannelId);
    return;
  }
  const session = deps.gateway.createLongPollSession(sub, res, deps.log);
  const refusal = await deps.gateway.open(session, sub.mid);
  if (refusal === undefined || res.headersSent) return;
  const reply = REFUSAL_REPLIES[refusal];
  sendPlain(res, reply.status, reply.pollText, { 'Retry-After': String(reply.retryAfterSec) });
}

/** WebSocket upgrade: refused exactly as Push server 2.0 did, or accepted once the channels are subscribed. */
export async function handleUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: ParsedUrl,
  deps: SubscribeDeps,
): Promise<void> {
  const sub = subscribeRequest(req, url, deps);
  if (sub === null) {
    deps.log.info({ transport: 'ws', closeCode: CloseCode.WrongChannelId }, 'subscription refused');
    refuse(socket, 400, 'Bad Request', bareReason(CloseCode.WrongChannelId));
    return;
  }
  const session = deps.gateway.createWsSession(sub, deps.log);
  const aborted = (): void => session.close(CloseCode.AbnormalClosure, 'handshake aborted');
  socket.once('close', aborted);
  const refusal = await deps.gateway.open(session, sub.mid);
  if (refusal !== undefined) {
    // A status instead of 101, never an accepted socket closed at once: the official
    // client retries a refused handshake after 15 s and more, a closed socket in 0.5 s.
    socket.off('close', aborted);
    const reply = REFUSAL_REPLIES[refusal];
    refuse(socket, reply.status, reply.statusText, reply.upgradeText, { 'Retry-After': String(reply.retryAfterSec) });
    return;
  }
  if (socket.destroyed) {
    aborted();
    return;
  }
  // The 101 and what the session sends first (a replay served from memory is ready within
  // the same turn) leave in one socket write instead of two.
  socket.cork();
  deps.wss.handleUpgrade(req, socket, head, (ws) => {
    socket.off('close', aborted);
    dropHttpListenerWrappers(socket);
    session.bind(ws as SessionSocket);
  });
  process.nextTick(() => socket.uncork());
}

/**
 * node:http gives each socket its own `on`/`addListener`/`prependListener` (closures
 * that hand the socket back from its HTTP parser when a `data` listener is added). An
 * upgraded socket has no parser any more: the shared methods do the same, and 20,000
 * idle connections do not each keep three closures.
 */
function dropHttpListenerWrappers(socket: Duplex): void {
  const shared = Object.getPrototypeOf(socket) as Duplex;
  for (const name of ['on', 'addListener', 'prependListener'] as const) {
    if (Object.hasOwn(socket, name)) socket[name] = shared[name];
  }
}

export function refuse(socket: Duplex, status: number, statusText: string, message: string, headers: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end(rawHandshakeRefusal(status, statusText, message, headers));
}
