import { closeText, longPollStatus, type PushCode } from './close-codes.ts';

/**
 * Request errors: one command fails, the connection or HTTP client is fine. Each
 * carries a stable code, the HTTP status of the publish API, and whether a retry
 * may succeed (`temporary`, the only retry predicate). Clients see `code` and our
 * message, never an internal one. Errors at the NATS boundary are translated into
 * these in `nats/`; nothing above it sees a NATS error class.
 */
export type AppErrorCode =
  | 'PUSH_ERR_OVERLOADED'
  | 'PUSH_ERR_NATS_UNAVAILABLE'
  | 'PUSH_ERR_PUBLISH_TIMEOUT'
  | 'PUSH_ERR_PUBLISH_REJECTED'
  | 'PUSH_ERR_BAD_REQUEST'
  | 'PUSH_ERR_IDEMPOTENCY_CONFLICT'
  | 'PUSH_ERR_PAYLOAD_TOO_LARGE'
  | 'PUSH_ERR_REFUSED'
  | 'PUSH_ERR_STOPPING'
  | 'PUSH_ERR_INTERNAL';

export class AppError extends Error {
  constructor(
    readonly code: AppErrorCode,
    message: string,
    readonly httpStatus: number,
    readonly temporary: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'AppError';
  }
}

/** The publisher's mailbox is full: answer 503 and let the caller retry. */
export class OverloadedError extends AppError {
  constructor() {
    super('PUSH_ERR_OVERLOADED', 'publisher overloaded, retry later', 503, true);
    this.name = 'OverloadedError';
  }
}

/**
 * The write was not acknowledged: NATS unreachable, no stream leader, or no answer in
 * time. It may or may not have been stored; a retry with the same message id is safe.
 */
export class PublishUnavailableError extends AppError {
  constructor(reason: 'nats-unavailable' | 'timeout', options?: ErrorOptions) {
    super(
      reason === 'timeout' ? 'PUSH_ERR_PUBLISH_TIMEOUT' : 'PUSH_ERR_NATS_UNAVAILABLE',
      reason === 'timeout' ? 'storage did not acknowledge in time, retry later' : 'storage unreachable, retry later',
      503,
      true,
      options,
    );
    this.name = 'PublishUnavailableError';
  }
}

/** The message stream could not be read (NATS away, a read that made no progress); a retry may succeed. */
export class StreamReadError extends AppError {
  constructor(detail: string, options?: ErrorOptions) {
    super('PUSH_ERR_NATS_UNAVAILABLE', `stream read failed: ${detail}`, 503, true, options);
    this.name = 'StreamReadError';
  }
}

/** The message stream does not exist (deleted under the running process). */
export class StreamMissingError extends StreamReadError {
  constructor(stream: string, options?: ErrorOptions) {
    super(`stream ${stream} not found`, options);
    this.name = 'StreamMissingError';
  }
}

/** JetStream refused the write for a reason a retry will not fix. */
export class PublishRejectedError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super('PUSH_ERR_PUBLISH_REJECTED', message, 500, false, options);
    this.name = 'PublishRejectedError';
  }
}

export class StoppingError extends AppError {
  constructor() {
    super('PUSH_ERR_STOPPING', 'server is shutting down, retry later', 503, true);
    this.name = 'StoppingError';
  }
}

export class BadRequestError extends AppError {
  constructor(message: string) {
    super('PUSH_ERR_BAD_REQUEST', message, 400, false);
    this.name = 'BadRequestError';
  }
}

/** The message is larger than storage takes; it can never be stored. */
export class PayloadTooLargeError extends AppError {
  constructor(options?: ErrorOptions) {
    super('PUSH_ERR_PAYLOAD_TOO_LARGE', 'message larger than the NATS server accepts', 413, false, options);
    this.name = 'PayloadTooLargeError';
  }
}

/** An idempotency key already stored another message: this one was not stored. */
export class IdempotencyConflictError extends AppError {
  constructor() {
    super('PUSH_ERR_IDEMPOTENCY_CONFLICT', 'Idempotency-Key was used for another message; this one was not stored', 409, false);
    this.name = 'IdempotencyConflictError';
  }
}

/**
 * A request the protocol refuses with one of its codes (spec §3.8): a WebSocket is
 * closed with `closeCode`, an HTTP request answered 400 (429 for 4029) with "<code>: <reason>".
 */
export class ProtocolError extends AppError {
  constructor(
    readonly closeCode: PushCode,
    /** Why, in a word or two, for the log line only: the client sees the code and its reason. */
    readonly detail?: string,
  ) {
    const status = longPollStatus(closeCode);
    super('PUSH_ERR_REFUSED', closeText(closeCode), typeof status === 'number' ? status : 400, false);
    this.name = 'ProtocolError';
  }
}

/** The AppError in the cause chain, or an internal error that hides the original. */
export function toClientError(err: unknown): AppError {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof AppError) return e;
  }
  return new AppError('PUSH_ERR_INTERNAL', 'internal error', 500, false, { cause: err });
}
