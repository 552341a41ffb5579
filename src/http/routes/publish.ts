import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log/logger.ts';
import { toClientError } from '../../errors/app-error.ts';
import { capExpiry, type Publisher } from '../../publisher/publish-command.ts';
import type { DailyCounters } from '../../stats/daily-counters.ts';
import { receiversOf, type ChannelIdParser } from '../../wire/channel-id.ts';
import { CloseCode } from '../../errors/close-codes.ts';
import { CONTENT_TEXT, sendBody, sendPlain, sendPushError } from '../../wire/http-replies.ts';
import { single, type ParsedUrl } from '../request.ts';

export interface PublishDeps {
  publisher: Publisher;
  parser: ChannelIdParser;
  messageTtlSec: number;
  maxChannelsPerRequest: number;
  counters: DailyCounters;
  log: Logger;
}

/**
 * Text publish (spec §5.1): `POST /bitrix/pub/?CHANNEL_ID=a/b…`, body = message,
 * `Message-Expiry` = seconds it stays replayable. The 200 is sent only after
 * JetStream acknowledged every copy; 503 (with Retry-After) when it could not be
 * stored. An invalid CHANNEL_ID or an empty body publishes nothing and answers 200,
 * as the reference does. `Idempotency-Key` makes a retried request store once.
 */
export async function handleTextPublish(
  req: IncomingMessage,
  res: ServerResponse,
  url: ParsedUrl,
  body: Buffer,
  deps: PublishDeps,
): Promise<void> {
  const raw = single(url.query, 'CHANNEL_ID');
  const tokens = deps.parser.parse(typeof raw === 'string' ? raw : null, 'trusted');
  if (tokens === null) {
    deps.log.info({ reason: 'invalid channel id' }, 'publish ignored');
    sendBody(res, 200, '', CONTENT_TEXT);
    return;
  }
  if (body.length === 0) {
    deps.log.info({ reason: 'empty body' }, 'publish ignored');
    sendBody(res, 200, '', CONTENT_TEXT);
    return;
  }
  const receivers = receiversOf(tokens);
  if (receivers.length > deps.maxChannelsPerRequest) {
    sendPushError(res, CloseCode.TooManyChannels);
    return;
  }
  const key = req.headers['idempotency-key'];
  try {
    await deps.publisher.publish({
      receivers,
      body,
      expirySec: capExpiry(req.headers['message-expiry'], deps.messageTtlSec),
      idempotencyKey: typeof key === 'string' && key.length > 0 && key.length <= 128 ? `k:${key}` : undefined,
      source: 'http_text',
    });
    deps.counters.countMessage(undefined);
    sendBody(res, 200, '', CONTENT_TEXT);
  } catch (err) {
    const e = toClientError(err);
    sendPlain(res, e.httpStatus, e.message, e.temporary ? { 'Retry-After': '1' } : {});
  }
}
