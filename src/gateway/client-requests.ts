import { ProtocolError, toClientError } from '../errors/app-error.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { Logger } from '../log/logger.ts';
import type { WsSession } from './ws-session.ts';

/**
 * How the gateway has client requests answered (binary-mode WebSocket frames: client
 * publishing, channel stats). Resolves with the reply frame or undefined; rejects
 * with a ProtocolError for the protocol's refusals, or another AppError.
 */
export interface ClientRequests {
  handle(bytes: Uint8Array, publicId: string | undefined): Promise<Buffer | undefined>;
  /** Resolves once the sender may make its next request (limits.clientRequestsPerSec), or once `gone()`. */
  waitTurn?(publicId: string, gone: () => boolean): Promise<void>;
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
