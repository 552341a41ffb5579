import { createHmac } from 'node:crypto';
import { AttemptError } from './errors.ts';
import type { PreparedPublish } from './message.ts';
import type { Transport } from './transport.ts';

/**
 * Text publishing as the PHP `pull` module does it (spec §5.1): `POST <pub route>?CHANNEL_ID=a/b`
 * with the body as it is and `Message-Expiry`, plus `Idempotency-Key` so a retry is stored
 * once. jetpull answers an empty 200 once every copy is stored, 503 with Retry-After when
 * it could not be stored (a retry may succeed), other statuses for refusals. With `sign`,
 * `signature` carries the HMAC of the body (security.signedPublishing, 4026 without it).
 */
export function httpTransport(url: URL, headers: Readonly<Record<string, string>>, sign?: (body: string) => string): Transport {
  return {
    via: 'http',
    async send(p: PreparedPublish, timeoutMs: number) {
      if (p.tokens === undefined) throw new TypeError('a bare public id cannot be sent as CHANNEL_ID');
      const target = new URL(url);
      target.searchParams.set('CHANNEL_ID', p.tokens.join('/'));
      if (sign !== undefined) target.searchParams.set('signature', sign(p.body));
      let res: Response;
      try {
        res = await fetch(target, {
          method: 'POST',
          body: p.body,
          headers: {
            'Content-Type': 'text/plain; charset=utf-8',
            ...headers,
            'Idempotency-Key': p.idempotencyKey,
            ...(p.expirySec > 0 ? { 'Message-Expiry': String(p.expirySec) } : {}),
          },
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
        throw new AttemptError(
          timedOut ? 'PUSH_ERR_CLIENT_TIMEOUT' : 'PUSH_ERR_CLIENT_UNREACHABLE',
          timedOut ? `no answer from ${url.origin} within ${timeoutMs} ms` : `cannot reach ${url.origin}: ${causeText(err)}`,
          true,
          {},
          { cause: err },
        );
      }
      const text = await res.text().catch(() => '');
      if (res.status === 200) return { mids: undefined };
      throw refusal(res, text, url);
    },
    async close() {},
  };
}

function refusal(res: Response, text: string, url: URL): AttemptError {
  const retryAfter = Number(res.headers.get('retry-after'));
  const extra = { status: res.status, ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}) };
  const said = text.trim().slice(0, 200);
  if (res.status === 503 || res.status === 502 || res.status === 504 || res.status === 429 || res.headers.has('retry-after')) {
    return new AttemptError('PUSH_ERR_UNAVAILABLE', `${res.status}${said ? `: ${said}` : ''}`, true, extra);
  }
  const code =
    res.status === 409 ? 'PUSH_ERR_IDEMPOTENCY_CONFLICT'
    : res.status === 413 ? 'PUSH_ERR_PAYLOAD_TOO_LARGE'
    : res.status === 404 ? 'PUSH_ERR_CLIENT_NO_ROUTE'
    : res.status === 400 ? 'PUSH_ERR_REFUSED'
    : 'PUSH_ERR_INTERNAL';
  const hint = res.status === 404 ? ` (is ${url.pathname} the pub route of a listener at ${url.host}?)` : '';
  return new AttemptError(code, `${res.status}${said ? `: ${said}` : ''}${hint}`, false, extra);
}

function causeText(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

/** Hex HMAC of a body as it is sent (its UTF-8 bytes), with the portal's key: `signature` of a publish. */
export function bodySigner(key: string, algo: string): (body: string) => string {
  createHmac(algo, key); // an unknown hash fails here, not at the first publish
  return (body) => createHmac(algo, key).update(body, 'utf8').digest('hex');
}
