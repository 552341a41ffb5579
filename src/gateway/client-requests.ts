import { ProtocolError, toClientError } from '../errors/app-error.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import { parseClientText, RpcErrorCode, RpcFailure, rpcError, rpcResult, type RpcRequest } from '../wire/json-rpc.ts';
import type { WsSession } from './ws-session.ts';

/**
 * How the gateway has client requests answered (binary-mode WebSocket frames: client
 * publishing, channel stats). Resolves with the reply frame or undefined; rejects
 * with a ProtocolError for the protocol's refusals, or another AppError.
 */
export interface ClientRequests {
  handle(bytes: Uint8Array, publicId: string | undefined): Promise<Buffer | undefined>;
  /** Resolves once the sender may make its next request (limits.clientRequestsPerSec), or once `gone()`; `by` names what `key` is. */
  waitTurn?(key: string, gone: () => boolean, by?: 'public-id' | 'ip'): Promise<void>;
}

/**
 * A frame from a binary-mode client (text mode ignores client frames in WsSession):
 * a protobuf request is answered on the socket; a text frame (4013) or a refused
 * request closes it with the request's code; storage trouble closes it with 1013
 * (come back at once), anything else with 1011.
 */
export async function answerClientFrame(session: WsSession, data: Buffer, isBinary: boolean, requests: ClientRequests, log: Logger): Promise<void> {
  if (session.isClosed) return;
  if (!isBinary) {
    session.close(CloseCode.WrongRequestData);
    return;
  }
  if (session.publicId !== undefined && requests.waitTurn !== undefined) {
    await requests.waitTurn(session.publicId, () => session.isClosed);
    if (session.isClosed) return;
  }
  try {
    const reply = await requests.handle(data, session.publicId);
    if (reply !== undefined) session.sendNow(reply);
  } catch (err) {
    const e = toClientError(err);
    if (e instanceof ProtocolError) {
      log.info({ connId: session.id, closeCode: e.closeCode, detail: e.detail }, 'client request refused');
      session.close(e.closeCode);
    } else if (e.temporary) {
      session.close(CloseCode.TryAgainLater);
    } else {
      log.warn({ err, connId: session.id }, 'client request failed');
      session.close(CloseCode.InternalError);
    }
  }
}

/** Who calls a JSON-RPC method: the channels of its connection, its public id, its token's portal and user. */
export interface RpcCaller {
  readonly keys: readonly string[];
  readonly publicId: string | undefined;
  readonly hostId?: string | undefined;
  readonly userId?: string | undefined;
  /** The connection itself, for what lasts as long as it does (status watches); absent over HTTP. */
  readonly connection?: object | undefined;
}

/**
 * How the gateway has protocol 5's method calls answered. Resolves with the result;
 * rejects with an RpcFailure (its code and message go to the client), a ProtocolError
 * (the protocol's code and text), or another error (answered as an internal error).
 */
export interface RpcMethods {
  call(method: string, params: unknown, caller: RpcCaller): Promise<unknown>;
}

/**
 * A text frame from a JSON-RPC (protocol 5) client: `pong` counts as a pong, `mack:<mid>`
 * (its acknowledgement of a message) needs no answer, and every request with an id is
 * answered on the socket with its result or error; a refused call never closes the
 * connection. Calls of one frame are made one after another, each after the sender's
 * turn (limits.clientRequestsPerSec, per public id, or per address for a connection
 * that has none).
 */
export async function answerRpcFrame(session: WsSession, data: Buffer, requests: ClientRequests, methods: RpcMethods, log: Logger): Promise<void> {
  if (session.isClosed) return;
  const said = parseClientText(data.toString('utf8'));
  switch (said.kind) {
    case 'pong':
      session.pongReceived();
      return;
    case 'mack':
      return;
    case 'invalid':
      session.sendNow(rpcError(null, said.code, said.message));
      return;
    case 'requests':
      for (const request of said.requests) {
        // Per public id as binary requests are; a connection without one (a token's) by its address.
        if (session.publicId !== undefined) await requests.waitTurn?.(session.publicId, () => session.isClosed);
        else await requests.waitTurn?.(`address:${session.address}`, () => session.isClosed, 'ip');
        if (session.isClosed) return;
        const caller: RpcCaller = { keys: session.keys, publicId: session.publicId, hostId: session.hostId, userId: session.userId, connection: session };
        const reply = await answerRpc(request, () => methods.call(request.method, request.params, caller), log, { logFields: { connId: session.id } });
        if (reply !== undefined) session.sendNow(reply);
      }
  }
}

/**
 * One call's reply: its result, or the error a JSON-RPC client is given (an RpcFailure
 * as it is, a refusal with the protocol's code and text, storage trouble as 1013, and
 * anything else as -32603). A notification (no id) gets none, unless `answerAll`: a
 * portal reads a reply to each of its calls, which carry no id, and gets `id: null`.
 */
export async function answerRpc(
  request: RpcRequest,
  call: () => Promise<unknown>,
  log: Logger,
  opts: { answerAll?: boolean; logFields?: Record<string, unknown> } = {},
): Promise<Buffer | undefined> {
  const id = request.id ?? (opts.answerAll === true ? null : undefined);
  try {
    const result = await call();
    return id === undefined ? undefined : rpcResult(id, result ?? {});
  } catch (err) {
    const e = err instanceof RpcFailure ? err : toClientError(err);
    if (e instanceof ProtocolError) log.info({ ...opts.logFields, method: request.method, closeCode: e.closeCode, detail: e.detail }, 'call refused');
    else if (!(e instanceof RpcFailure) && !e.temporary) log.warn({ ...opts.logFields, err, method: request.method }, 'call failed');
    if (id === undefined) return undefined;
    if (e instanceof RpcFailure) return rpcError(id, e.code, e.message);
    if (e instanceof ProtocolError) return rpcError(id, e.closeCode, e.message);
    if (e.temporary) return rpcError(id, CloseCode.TryAgainLater, 'Try again later.');
    return rpcError(id, RpcErrorCode.InternalError, 'Internal error');
  }
}
