/**
 * What a publish can end with besides success. Branch on the class (or `temporary`):
 *
 * - `InvalidPublishError`: the request was wrong before anything was sent; fix the call.
 * - `PublishRefusedError`: the server refused it (bad request, idempotency key reused for
 *   another message, too large, no publish route at that URL); retrying cannot help.
 * - `PublishFailedError`: every attempt failed in a way a retry might fix (server or NATS
 *   unreachable, 503, no answer in time) until the retry budget ran out. The message may
 *   have been stored: publish again with the same idempotency key to be sure, never
 *   with a new one.
 */
export class PublishError extends Error {
  constructor(
    /** The server's code (`PUSH_ERR_…`) or one of the client's (`PUSH_ERR_CLIENT_…`). */
    readonly code: string,
    message: string,
    readonly temporary: boolean,
    /** Requests sent (0 when the request was refused before sending). */
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PublishError';
  }
}

export class InvalidPublishError extends PublishError {
  constructor(message: string) {
    super('PUSH_ERR_CLIENT_INVALID', message, false, 0);
    this.name = 'InvalidPublishError';
  }
}

export class PublishRefusedError extends PublishError {
  constructor(
    code: string,
    message: string,
    attempts: number,
    /** The HTTP status, over HTTP. */
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(code, message, false, attempts, options);
    this.name = 'PublishRefusedError';
  }
}

export class PublishFailedError extends PublishError {
  constructor(
    code: string,
    message: string,
    attempts: number,
    /** The idempotency key to publish again with. */
    readonly idempotencyKey: string,
    options?: ErrorOptions,
  ) {
    super(code, message, true, attempts, options);
    this.name = 'PublishFailedError';
  }
}

/** One attempt's failure, as a transport reports it; the retry loop turns it into the errors above. */
export class AttemptError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly temporary: boolean,
    readonly extra: { status?: number; retryAfterMs?: number } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AttemptError';
  }
}
