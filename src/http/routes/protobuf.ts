import type { ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.ts';
import type { ProtobufRequests, RequestOrigin } from '../../publisher/protobuf-requests.ts';
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
  const outcome = await requests.handle(body, origin);
  if (outcome.ok) {
    const emptyType = origin.trusted ? CONTENT_TEXT : CONTENT_BINARY;
    if (outcome.reply === undefined) sendBody(res, 200, '', emptyType);
    else sendBody(res, 200, outcome.reply, CONTENT_BINARY);
    return;
  }
  if ('code' in outcome) {
    log.info({ closeCode: outcome.code, trusted: origin.trusted }, 'request refused');
    sendPushError(res, outcome.code);
    return;
  }
  const e = outcome.error;
  sendPlain(res, e.httpStatus, e.message, e.temporary ? { 'Retry-After': '1' } : {});
}
