import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InvalidPublishError } from './errors.ts';

/**
 * What a backend publishes, checked before anything is sent: over HTTP text the
 * server answers 200 and stores nothing for a malformed CHANNEL_ID or an empty body
 * (as Push server 2.0 does), so a 200 only means "stored" if those were valid.
 */

/**
 * A receiver: a private id (`<32 hex>`, or `<32 hex>.<sig>`, the signature is not
 * needed on the trusted route and is dropped), a signed `<priv>:<pub>.<sig>` token
 * (both ids), or `{ id, isPrivate: false }` for a bare public id (NATS only).
 */
export type ChannelRef = string | { readonly id: string; readonly isPrivate?: boolean };

/** The body the official client understands (spec §3.3); `module_id` is what subscribers select on. */
export interface PullMessage {
  readonly module_id: string;
  readonly command: string;
  readonly params?: Readonly<Record<string, unknown>>;
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface PublishRequest {
  /** One or more receivers; the same message is stored for each. */
  readonly channels: readonly ChannelRef[];
  /** A message object (sent as its JSON), or the body text exactly as it should arrive. */
  readonly message: PullMessage | string;
  /** Seconds the message stays replayable for clients that reconnect; 0 or absent: delivered live only. */
  readonly expirySec?: number;
  /** Makes retries store once (up to 128 visible ASCII characters). Default: a new UUID per publish. */
  readonly idempotencyKey?: string;
}

/** A request ready for a transport. */
export interface PreparedPublish {
  /** Channel tokens as CHANNEL_ID takes them, or undefined when a bare public id is among the receivers. */
  readonly tokens: readonly string[] | undefined;
  /** Receivers as the NATS publish API takes them. */
  readonly receivers: ReadonlyArray<string | { id: string; isPrivate: boolean }>;
  readonly body: string;
  readonly expirySec: number;
  readonly idempotencyKey: string;
}

const ID = /^[a-f0-9]{32}$/;
/** `priv` or `priv.sig`: the id alone is sent. */
const PRIVATE = /^([a-f0-9]{32})(?:\.[a-f0-9]{32,128})?$/;
/** `priv:pub.sig`: sent as it is, the server checks the signature. */
const SIGNED = /^[a-f0-9]{32}:[a-f0-9]{32}\.[a-f0-9]{32,128}$/;

const Channel = z.union([
  z.string().refine((s) => PRIVATE.test(s) || SIGNED.test(s), 'a channel is a 32-lowercase-hex private id, "<id>.<sig>", or a signed "<priv>:<pub>.<sig>" token'),
  z.strictObject({ id: z.string().regex(ID, 'an id is 32 lowercase hex characters'), isPrivate: z.boolean().optional() }),
]);

const Message = z.strictObject({
  module_id: z.string({ error: 'module_id (a string) is required' }).min(1, 'module_id is empty'),
  command: z.string({ error: 'command (a string) is required' }).min(1, 'command is empty'),
  params: z.record(z.string(), z.unknown()).optional(),
  extra: z.record(z.string(), z.unknown()).optional(),
});

const Text = z.string().min(1, 'the body is empty (the server would store nothing)');

const Request = z.strictObject({
  channels: z.array(Channel).min(1, 'at least one channel is required'),
  message: z.unknown(),
  expirySec: z.number().int('expirySec is whole seconds').min(0, 'expirySec is 0 or more').optional(),
  idempotencyKey: z.string().regex(/^[\x21-\x7e]{1,128}$/, 'an idempotency key is 1-128 visible ASCII characters').optional(),
});

export function preparePublish(request: PublishRequest): PreparedPublish {
  const parsed = Request.safeParse(request);
  if (!parsed.success) throw new InvalidPublishError(describe(parsed.error, []));
  const body = (typeof request.message === 'string' ? Text : Message).safeParse(request.message);
  if (!body.success) throw new InvalidPublishError(describe(body.error, ['message']));
  const r = parsed.data;
  const tokens: string[] = [];
  const receivers: Array<string | { id: string; isPrivate: boolean }> = [];
  let barePublic = false;
  for (const ch of r.channels) {
    if (typeof ch !== 'string') {
      const isPrivate = ch.isPrivate ?? true;
      if (isPrivate) tokens.push(ch.id);
      else barePublic = true;
      receivers.push(isPrivate ? ch.id : { id: ch.id, isPrivate });
      continue;
    }
    // The trusted route does not check a private-only token's signature, yet refuses one of
    // another length than its HMAC's; the bare id always parses.
    const token = SIGNED.test(ch) ? ch : PRIVATE.exec(ch)![1]!;
    tokens.push(token);
    receivers.push(token);
  }
  return {
    tokens: barePublic ? undefined : [...new Set(tokens)],
    receivers,
    body: typeof body.data === 'string' ? body.data : JSON.stringify(body.data),
    expirySec: r.expirySec ?? 0,
    idempotencyKey: r.idempotencyKey ?? randomUUID(),
  };
}

function describe(error: z.ZodError, prefix: string[]): string {
  return error.issues.map((i) => `${[...prefix, ...i.path.map(String)].join('.') || 'request'}: ${i.message}`).join('; ');
}
