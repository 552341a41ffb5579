import { z } from 'zod';
import { BadRequestError, toClientError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import { capExpiry, type PublishCommand, type Publisher } from '../publisher/publish-command.ts';
import { channelKey, receiversOf, type ChannelIdParser, type Receiver } from '../wire/channel-id.ts';
import { publishEnvelopeSchema, readEnvelope, type PublishEnvelope } from './nats-publish-envelope.ts';

/**
 * Native publishing over NATS request/reply, for backends that speak NATS:
 *
 *   request  one envelope (nats-publish-envelope.ts): {"channels": […], "body": …, "expiry": …, "id": …}
 *   reply    {"mids": ["<26 digits>", …]}   one per receiver, once stored
 *            {"error": {"code": "PUSH_ERR_…", "message": "…", "temporary": true|false}}
 *
 *   request  a batch: {"messages": [<envelope>, …]}, at most limits.maxMessagesPerRequest
 *   reply    {"results": [{"mids": […]} | {"error": {…}}, …]}   one per message, in order
 *            {"error": {…}} when the batch itself is refused
 *
 * A batch is checked whole before anything is published: one invalid message refuses
 * it (PUSH_ERR_BAD_REQUEST naming `messages[i]`) and nothing is stored. Its messages
 * are then stored independently, each answered as a single publish would be, so a
 * caller retries only those answered with a temporary error (with their `id`, safely).
 *
 * Served by every publisher process in one queue group (nats/request-server.ts).
 */

export interface NatsPublishDeps {
  publisher: Publisher;
  parser: ChannelIdParser;
  messageTtlSec: number;
  maxChannelsPerRequest: number;
  maxPayloadBytes: number;
  /** Messages of one batch request. */
  maxMessagesPerRequest: number;
  log: Logger;
}

type Outcome = { mids: readonly string[] } | { error: { code: string; message: string; temporary: boolean } };

/** A handler for the publish subject: request bytes in, reply JSON out; never throws. */
export function natsPublishHandler(deps: NatsPublishDeps): (data: Uint8Array) => Promise<string> {
  const schema = publishEnvelopeSchema(deps.maxChannelsPerRequest);
  const batchSchema = z.strictObject({
    messages: z.array(z.unknown()).min(1, 'at least one message is required').max(deps.maxMessagesPerRequest, `at most ${deps.maxMessagesPerRequest} messages`),
  });
  const decoder = new TextDecoder();
  const command = (env: PublishEnvelope): PublishCommand => {
    const receivers = toReceivers(env.channels, deps.parser);
    if (receivers.length > deps.maxChannelsPerRequest) throw new BadRequestError(`at most ${deps.maxChannelsPerRequest} channels`);
    const body = Buffer.from(typeof env.body === 'string' ? env.body : serialize(env.body), 'utf8');
    if (body.length > deps.maxPayloadBytes) throw new BadRequestError(`body exceeds ${deps.maxPayloadBytes} bytes`);
    return {
      receivers,
      body,
      expirySec: capExpiry(env.expiry ?? 0, deps.messageTtlSec),
      idempotencyKey: env.id === undefined ? undefined : `k:${env.id}`,
      source: 'nats',
    };
  };
  const stored = (cmd: PublishCommand): Promise<Outcome> =>
    deps.publisher.publish(cmd).then(
      (result) => ({ mids: result.mids }),
      (err: unknown) => failure(err, deps.log),
    );
  return async (data) => {
    try {
      let json: unknown;
      try {
        json = JSON.parse(decoder.decode(data));
      } catch {
        throw new BadRequestError('request is not JSON');
      }
      if (!isBatch(json)) return JSON.stringify(await stored(command(readEnvelope(json, schema, deps.maxChannelsPerRequest))));
      const batch = batchSchema.safeParse(json);
      if (!batch.success) throw new BadRequestError(z.prettifyError(batch.error).replace(/\n/g, '; '));
      // Every message is checked before any is published.
      const commands = batch.data.messages.map((m, i) => {
        try {
          return command(readEnvelope(m, schema, deps.maxChannelsPerRequest));
        } catch (err) {
          if (err instanceof BadRequestError) throw new BadRequestError(`messages[${i}]: ${err.message}`);
          throw err;
        }
      });
      return JSON.stringify({ results: await Promise.all(commands.map(stored)) });
    } catch (err) {
      return JSON.stringify(failure(err, deps.log));
    }
  };
}

/** An object with a `messages` field is a batch (a single envelope has none). */
function isBatch(json: unknown): json is { messages: unknown } {
  return typeof json === 'object' && json !== null && !Array.isArray(json) && Object.hasOwn(json, 'messages');
}

function failure(err: unknown, log: Logger): Outcome {
  const e = toClientError(err);
  if (e.code === 'PUSH_ERR_BAD_REQUEST') log.info({ err: e.message }, 'nats publish refused');
  else if (e.code === 'PUSH_ERR_INTERNAL') log.error({ err }, 'nats publish failed');
  return { error: { code: e.code, message: e.message, temporary: e.temporary } };
}

/** JSON.parse takes nesting that JSON.stringify cannot write back (a RangeError past the stack). */
function serialize(body: object): string {
  try {
    return JSON.stringify(body);
  } catch (err) {
    if (err instanceof RangeError) throw new BadRequestError('body is nested too deeply');
    throw err;
  }
}

/** A bare private id: what the parser reads as one private receiver, in trusted mode, without its token machinery. */
const PRIVATE_ID = /^[a-f0-9]{32}$/;

function toReceivers(channels: ReadonlyArray<string | { id: string; isPrivate: boolean }>, parser: ChannelIdParser): Receiver[] {
  const only = channels.length === 1 ? channels[0] : undefined;
  if (typeof only === 'string' && PRIVATE_ID.test(only)) return [{ id: only, isPrivate: true }];
  const out: Receiver[] = [];
  const seen = new Set<string>();
  for (const ch of channels) {
    let list: Receiver[];
    if (typeof ch === 'string' && PRIVATE_ID.test(ch)) {
      list = [{ id: ch, isPrivate: true }];
    } else if (typeof ch === 'string') {
      const tokens = parser.parse(ch, 'trusted');
      if (tokens === null) throw new BadRequestError(`invalid channel "${ch.slice(0, 80)}"`);
      list = receiversOf(tokens);
    } else {
      list = [{ id: ch.id, isPrivate: ch.isPrivate }];
    }
    for (const r of list) {
      const k = channelKey(r);
      if (!seen.has(k)) {
        seen.add(k);
        out.push(r);
      }
    }
  }
  return out;
}
