import { z } from 'zod';
import { BadRequestError, toClientError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import { capExpiry, type Publisher } from '../publisher/publish-command.ts';
import { channelKey, receiversOf, type ChannelIdParser, type Receiver } from '../wire/channel-id.ts';

/**
 * Native publishing over NATS request/reply, for backends that speak NATS:
 *
 *   request  {"channels": ["<private id>" | "<priv>:<pub>.<sig>" | {"id": "<32 hex>", "isPrivate": false}, …],
 *             "body": "<text>" | {…}, "expiry": <seconds>, "id": "<idempotency key>"}
 *   reply    {"mids": ["<26 digits>", …]}   one per receiver, once stored
 *            {"error": {"code": "PUSH_ERR_…", "message": "…", "temporary": true|false}}
 *
 * Served by every publisher process in one queue group (nats/request-server.ts).
 */

const HEX_ID = z.string().regex(/^[a-f0-9]{32}$/, 'a channel id is 32 lowercase hex characters');

export function publishEnvelopeSchema(maxChannels: number) {
  return z.strictObject({
    channels: z
      .array(z.union([z.string().min(1), z.strictObject({ id: HEX_ID, isPrivate: z.boolean().default(true) })]))
      .min(1, 'at least one channel is required'),
    // Passed through as parsed, not rebuilt: a rebuilt object loses a "__proto__" key.
    body: z.union([z.string().min(1, 'body is empty'), z.custom<object>((v) => typeof v === 'object' && v !== null, 'body is a string, a JSON object or an array')]),
    expiry: z.number().int().min(0).optional(),
    id: z.string().min(1).max(128).optional(),
  }).refine((v) => v.channels.length <= maxChannels, { message: `at most ${maxChannels} channels`, path: ['channels'] });
}

export interface NatsPublishDeps {
  publisher: Publisher;
  parser: ChannelIdParser;
  messageTtlSec: number;
  maxChannelsPerRequest: number;
  maxPayloadBytes: number;
  log: Logger;
}

/** A handler for the publish subject: request bytes in, reply JSON out; never throws. */
export function natsPublishHandler(deps: NatsPublishDeps): (data: Uint8Array) => Promise<string> {
  const schema = publishEnvelopeSchema(deps.maxChannelsPerRequest);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return async (data) => {
    try {
      let json: unknown;
      try {
        json = JSON.parse(decoder.decode(data));
      } catch {
        throw new BadRequestError('request is not JSON');
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) throw new BadRequestError(z.prettifyError(parsed.error).replace(/\n/g, '; '));
      const env = parsed.data;
      const receivers = toReceivers(env.channels, deps.parser);
      if (receivers.length > deps.maxChannelsPerRequest) throw new BadRequestError(`at most ${deps.maxChannelsPerRequest} channels`);
      const body = encoder.encode(typeof env.body === 'string' ? env.body : serialize(env.body));
      if (body.length > deps.maxPayloadBytes) throw new BadRequestError(`body exceeds ${deps.maxPayloadBytes} bytes`);
      const result = await deps.publisher.publish({
        receivers,
        body,
        expirySec: capExpiry(env.expiry ?? 0, deps.messageTtlSec),
        idempotencyKey: env.id === undefined ? undefined : `k:${env.id}`,
        source: 'nats',
      });
      return JSON.stringify({ mids: result.mids });
    } catch (err) {
      const e = toClientError(err);
      if (e.code === 'PUSH_ERR_BAD_REQUEST') deps.log.info({ err: e.message }, 'nats publish refused');
      else if (e.code === 'PUSH_ERR_INTERNAL') deps.log.error({ err }, 'nats publish failed');
      return JSON.stringify({ error: { code: e.code, message: e.message, temporary: e.temporary } });
    }
  };
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

function toReceivers(channels: ReadonlyArray<string | { id: string; isPrivate: boolean }>, parser: ChannelIdParser): Receiver[] {
  const out: Receiver[] = [];
  const seen = new Set<string>();
  for (const ch of channels) {
    let list: Receiver[];
    if (typeof ch === 'string') {
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
