import { NatsRequestError, NatsRequester, type NatsRequesterOptions } from '../nats/publish-client.ts';
import { AttemptError } from './errors.ts';
import type { PreparedPublish } from './message.ts';
import type { Transport } from './transport.ts';

/**
 * The native NATS publish API (src/api/nats-publish-api.ts): a request on the publish
 * subject, answered once every copy is stored with one mid per receiver, or with a
 * structured error that says whether it is temporary. The idempotency key goes as
 * `id`, which the server stores under the same key as HTTP's `Idempotency-Key`.
 */
export function natsTransport(subject: string, options: NatsRequesterOptions): Transport {
  const requester = new NatsRequester(options);
  return {
    via: 'nats',
    async send(p: PreparedPublish, timeoutMs: number) {
      const request = JSON.stringify({ channels: p.receivers, body: p.body, expiry: p.expirySec, id: p.idempotencyKey });
      let text: string;
      try {
        text = await requester.request(subject, request, timeoutMs);
      } catch (err) {
        if (!(err instanceof NatsRequestError)) throw err;
        throw failure(err, subject, timeoutMs);
      }
      let reply: { mids?: string[]; error?: { code?: string; message?: string; temporary?: boolean } };
      try {
        reply = JSON.parse(text) as typeof reply;
      } catch (err) {
        throw new AttemptError('PUSH_ERR_CLIENT_BAD_REPLY', `the reply on ${subject} is not JSON: is a jetpull publisher serving it?`, false, {}, { cause: err });
      }
      if (Array.isArray(reply.mids)) return { mids: reply.mids };
      const e = reply.error ?? {};
      throw new AttemptError(e.code ?? 'PUSH_ERR_CLIENT_BAD_REPLY', e.message ?? `unexpected reply on ${subject}`, e.temporary === true);
    },
    close: () => requester.close(),
  };
}

function failure(err: NatsRequestError, subject: string, timeoutMs: number): AttemptError {
  switch (err.reason) {
    case 'timeout':
      return new AttemptError('PUSH_ERR_CLIENT_TIMEOUT', `no reply on ${subject} within ${timeoutMs} ms`, true, {}, { cause: err });
    case 'no-responders':
      return new AttemptError('PUSH_ERR_CLIENT_NO_RESPONDERS', `no jetpull publisher serves ${subject} now`, true, {}, { cause: err });
    case 'refused':
      return new AttemptError('PUSH_ERR_CLIENT_NATS_REFUSED', 'NATS refused the connection or the subject: check the credentials and permissions', false, {}, { cause: err });
    default:
      return new AttemptError('PUSH_ERR_CLIENT_UNREACHABLE', `cannot reach NATS: ${(err.cause as Error | undefined)?.message ?? 'connection failed'}`, true, {}, { cause: err });
  }
}
