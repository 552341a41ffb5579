import type { ServerResponse } from 'node:http';
import type { ProtobufRequests, RequestOrigin } from '../../api/protobuf-requests.ts';
import { ProtocolError, toClientError } from '../../errors/app-error.ts';
import type { Logger } from '../../log/logger.ts';
import { CONTENT_BINARY, CONTENT_TEXT, sendBody, sendPlain, sendPushError } from '../../wire/http-replies.ts';

/**
 * A protobuf RequestBatch over HTTP: the backend's `POST /bitrix/pub/?binaryMode=true`
 * (trusted) and the client's `POST /bitrix/rest/` (untrusted). Success: 200 with the
 * ResponseBatch, or an empty 200 for publishes; refusal: 400 "<code>: <reason>";
 * storage trouble: 503 with Retry-After.
 */
export async function handleProtobufRequest(
  res: ServerResponse,
  body: Buffer,
  origin: RequestOrigin,
  requests: ProtobufRequests,
  log: Logger,
): Promise<void> {
  let reply: Buffer | undefined;
  try {
    reply = await requests.handle(body, origin);
  } catch (err) {
    const e = toClientError(err);
    if (e instanceof ProtocolError) {
      log.info({ closeCode: e.closeCode, detail: e.detail, trusted: origin.trusted }, 'request refused');
      sendPushError(res, e.closeCode);
    } else {
      sendPlain(res, e.httpStatus, e.message, e.temporary ? { 'Retry-After': '1' } : {});
    }
    return;
  }
  if (reply === undefined) sendBody(res, 200, '', origin.trusted ? CONTENT_TEXT : CONTENT_BINARY);
  else sendBody(res, 200, reply, CONTENT_BINARY);
}
