import { InvalidPublishError, PublishFailedError, PublishRefusedError } from './errors.ts';
import { bodySigner, httpTransport } from './http-transport.ts';
import { preparePublish, type PublishRequest } from './message.ts';
import { natsTransport } from './nats-transport.ts';
import { DEFAULT_RETRY, withRetries, type RetryEvent, type RetryPolicy } from './retry.ts';
import type { Transport } from './transport.ts';

/** Where to publish: exactly one of `http` or `nats`. */
export interface PublisherOptions {
  /** The trusted publish route, as the portal's `path_to_publish`: `http://127.0.0.1:8895/bitrix/pub/`. */
  readonly http?: {
    readonly url: string | URL;
    readonly headers?: Readonly<Record<string, string>>;
    /**
     * Signs every request with the portal's key (the server's `security.key` and
     * `security.algo`, default sha1), as a server with `security.signedPublishing:
     * required` asks: `signature` = hex HMAC of the body. A server with it off ignores it.
     */
    readonly signature?: { readonly key: string; readonly algo?: string };
  };
  /** The NATS the publishers use, and their `publisher.natsSubject` (default `push.publish`). */
  readonly nats?: {
    readonly servers: string | readonly string[];
    readonly subject?: string;
    readonly user?: string;
    readonly pass?: string;
    readonly token?: string;
    readonly credsFile?: string;
    readonly name?: string;
  };
  /**
   * Time one attempt may take (ms). Default 15 000: longer than the server's
   * `publisher.publishTimeoutMs` (10 s), so the server's 503 comes before the client gives up.
   */
  readonly attemptTimeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Called before each retry, e.g. to log it. */
  readonly onRetry?: (event: RetryEvent) => void;
}

export interface PublishReceipt {
  readonly via: 'http' | 'nats';
  /** The key the message was stored under; a later publish with it is stored once. */
  readonly idempotencyKey: string;
  readonly attempts: number;
  /** One message id per receiver (NATS); HTTP text publishing does not answer them. */
  readonly mids: readonly string[] | undefined;
}

export interface Publisher {
  /** Resolves once the message is stored for every receiver; rejects with a PublishError. */
  publish(request: PublishRequest): Promise<PublishReceipt>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const DEFAULT_ATTEMPT_TIMEOUT_MS = 15_000;

export function createPublisher(options: PublisherOptions): Publisher {
  const transport = transportOf(options);
  const policy: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const timeoutMs = options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  if (!(timeoutMs > 0) || !(policy.maxAttempts >= 1)) throw new RangeError('attemptTimeoutMs and retry.maxAttempts must be positive');
  const onRetry = options.onRetry ?? (() => undefined);
  const close = (): Promise<void> => transport.close();
  return {
    async publish(request) {
      const prepared = preparePublish(request);
      if (transport.via === 'http' && prepared.tokens === undefined) {
        throw new InvalidPublishError('HTTP text publishing addresses public ids only through signed "<priv>:<pub>.<sig>" tokens; publish a bare public id over NATS');
      }
      const outcome = await withRetries(() => transport.send(prepared, timeoutMs), policy, onRetry);
      if (outcome.ok) return { via: transport.via, idempotencyKey: prepared.idempotencyKey, attempts: outcome.attempts, mids: outcome.value.mids };
      const e = outcome.error;
      if (!e.temporary) throw new PublishRefusedError(e.code, e.message, outcome.attempts, e.extra.status, { cause: e });
      throw new PublishFailedError(e.code, `gave up after ${outcome.attempts} attempt(s): ${e.message}`, outcome.attempts, prepared.idempotencyKey, { cause: e });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** One publish with a publisher of its own (over NATS: a connection opened and closed for it). */
export async function publish(request: PublishRequest, options: PublisherOptions): Promise<PublishReceipt> {
  const publisher = createPublisher(options);
  try {
    return await publisher.publish(request);
  } finally {
    await publisher.close();
  }
}

function transportOf(o: PublisherOptions): Transport {
  if ((o.http === undefined) === (o.nats === undefined)) throw new TypeError('give exactly one of options.http or options.nats');
  if (o.http) return httpTransport(new URL(o.http.url), o.http.headers ?? {}, o.http.signature && bodySigner(o.http.signature.key, o.http.signature.algo ?? 'sha1'));
  const n = o.nats!;
  const servers = typeof n.servers === 'string' ? n.servers.split(',').map((s) => s.trim()) : [...n.servers];
  return natsTransport(n.subject ?? 'push.publish', {
    servers,
    name: n.name,
    user: n.user,
    pass: n.pass,
    token: n.token,
    credsFile: n.credsFile,
    connectTimeoutMs: Math.min(timeoutOr(o), 5_000),
  });
}

const timeoutOr = (o: PublisherOptions): number => o.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
