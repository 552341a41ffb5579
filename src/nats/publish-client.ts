import { readFileSync } from 'node:fs';
import {
  AuthorizationError,
  connect,
  credsAuthenticator,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  UserAuthenticationExpiredError,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { deferred, type Deferred } from '../util/deferred.ts';

/**
 * The NATS side of the publisher library (src/client/): one lazily opened connection
 * that sends requests to the publish subject and reads the replies as text. NATS
 * errors are translated here into `NatsRequestError` reasons, so the library never
 * sees a NATS type.
 */

export interface NatsRequesterOptions {
  servers: readonly string[];
  name?: string | undefined;
  user?: string | undefined;
  pass?: string | undefined;
  token?: string | undefined;
  credsFile?: string | undefined;
  connectTimeoutMs: number;
}

/**
 * Why a request got no reply: `timeout` (it may have been served), `no-responders`
 * (no publisher serves the subject now), `unreachable` (no connection) — all worth a
 * retry; `refused` (credentials or permissions) is not.
 */
export type NatsRequestFailure = 'timeout' | 'no-responders' | 'unreachable' | 'refused';

export class NatsRequestError extends Error {
  constructor(readonly reason: NatsRequestFailure, options?: ErrorOptions) {
    super(`nats request failed: ${reason}`, options);
    this.name = 'NatsRequestError';
  }
}

export class NatsRequester {
  private connection: Promise<NatsConnection> | undefined;
  private closed = false;
  /** Requests awaiting their reply: a lost connection fails them at once, as their replies are gone with it. */
  private readonly inFlight = new Set<(err: NatsRequestError) => void>();
  /** Set while the connection is down: a request sent then never gets its reply (nats.js), so it waits for the reconnect. */
  private reconnected: Deferred<void> | undefined;

  constructor(private readonly opts: NatsRequesterOptions) {}

  /** The reply's text; rejects with NatsRequestError. */
  async request(subject: string, data: string, timeoutMs: number): Promise<string> {
    const started = Date.now();
    const nc = await this.connect();
    if (this.reconnected !== undefined && !(await this.waitReconnect(timeoutMs))) {
      throw new NatsRequestError('unreachable', { cause: new Error(`not reconnected within ${timeoutMs} ms`) });
    }
    const remainingMs = Math.max(1, timeoutMs - (Date.now() - started));
    return new Promise<string>((resolve, reject) => {
      const fail = (err: NatsRequestError): void => {
        this.inFlight.delete(fail);
        reject(err);
      };
      this.inFlight.add(fail);
      nc.request(subject, data, { timeout: remainingMs }).then(
        (reply) => {
          this.inFlight.delete(fail);
          resolve(reply.string());
        },
        (err: unknown) => fail(new NatsRequestError(failureOf(err), { cause: err })),
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connection;
    this.connection = undefined;
    const nc = await pending?.catch(() => undefined);
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  private connect(): Promise<NatsConnection> {
    if (this.closed) return Promise.reject(new NatsRequestError('unreachable', { cause: new Error('requester closed') }));
    if (this.connection === undefined) {
      const o = this.opts;
      const options: NodeConnectionOptions = {
        servers: [...o.servers],
        name: o.name ?? 'jetpull-client',
        timeout: o.connectTimeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        noAsyncTraces: true,
        ...(o.user === undefined ? {} : { user: o.user, pass: o.pass ?? '' }),
        ...(o.token === undefined ? {} : { token: o.token }),
        ...(o.credsFile === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(o.credsFile)) }),
      };
      const attempt = connect(options);
      this.connection = attempt;
      attempt.then(
        (nc) => void this.watch(nc),
        // A failed first connection is forgotten, so the next request tries again.
        () => {
          if (this.connection === attempt) this.connection = undefined;
        },
      );
    }
    return this.connection.catch((err: unknown) => {
      throw new NatsRequestError(failureOf(err), { cause: err });
    });
  }

  private async waitReconnect(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const ok = await Promise.race([this.reconnected!.promise.then(() => true), expired]);
    clearTimeout(timer);
    return ok;
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.reconnected ??= deferred<void>();
        const lost = new NatsRequestError('unreachable', { cause: new Error('connection lost before the reply') });
        for (const fail of [...this.inFlight]) fail(lost);
      } else if (s.type === 'reconnect') {
        this.reconnected?.resolve();
        this.reconnected = undefined;
      }
    }
    // Closed: nobody waits for a reconnect that will not come.
    this.reconnected?.resolve();
  }
}

function failureOf(err: unknown): NatsRequestFailure {
  if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError || err instanceof PermissionViolationError) return 'refused';
  if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) return 'no-responders';
  if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) return 'timeout';
  return 'unreachable';
}
