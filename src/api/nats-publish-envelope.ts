import { z } from 'zod';
import { BadRequestError } from '../errors/app-error.ts';

/**
 * The request envelope of the native NATS publish API (nats-publish-api.ts):
 *
 *   {"channels": ["<private id>" | "<priv>:<pub>.<sig>" | {"id": "<32 hex>", "isPrivate": false}, …],
 *    "body": "<text>" | {…}, "expiry": <seconds>, "id": "<idempotency key>"}
 *
 * The zod schema is the definition. A publisher answers tens of thousands of these a
 * second, and most are the plain form (channels given as strings), so that form is
 * checked by hand first (`plainEnvelope`, which takes nothing the schema refuses);
 * everything else, and every refusal with its message, goes through the schema.
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

export type PublishEnvelope = z.infer<ReturnType<typeof publishEnvelopeSchema>>;

const FIELDS = new Set(['channels', 'body', 'expiry', 'id']);

/** The envelope when it is the plain form the schema takes as it is; undefined otherwise (then ask the schema). */
export function plainEnvelope(json: unknown, maxChannels: number): PublishEnvelope | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const v = json as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!FIELDS.has(k)) return undefined;
  const { channels, body, expiry, id } = v;
  if (!Array.isArray(channels) || channels.length === 0 || channels.length > maxChannels) return undefined;
  for (const c of channels) if (typeof c !== 'string' || c.length === 0) return undefined;
  if (typeof body === 'string' ? body.length === 0 : typeof body !== 'object' || body === null) return undefined;
  if (expiry !== undefined && !(Number.isSafeInteger(expiry) && (expiry as number) >= 0)) return undefined;
  if (id !== undefined && !(typeof id === 'string' && id.length >= 1 && id.length <= 128)) return undefined;
  return { channels: channels as string[], body: body as string | object, expiry: expiry as number | undefined, id: id as string | undefined };
}

/** Reads one envelope, or throws BadRequestError with the schema's account of what is wrong (prefixed with `where`). */
export function readEnvelope(json: unknown, schema: ReturnType<typeof publishEnvelopeSchema>, maxChannels: number, where = ''): PublishEnvelope {
  const plain = plainEnvelope(json, maxChannels);
  if (plain !== undefined) return plain;
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BadRequestError(where + z.prettifyError(parsed.error).replace(/\n/g, '; '));
  return parsed.data;
}
