import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';

/**
 * The one NATS connection of a process, reconnecting for ever, with its state
 * (connected or not) and status events turned into log lines. `noAsyncTraces`
 * matters: async stack capture halved acknowledged publish throughput.
 */
export class NatsLink {
  private connectedValue = true;
  private reconnectCount = 0;
  private waiters = new Set<() => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private readonly disconnectListeners = new Set<() => void>();
  readonly done: Promise<void>;

  private constructor(readonly nc: NatsConnection, private readonly log: Logger) {
    this.done = this.watch();
  }

  static async open(cfg: Config['nats'], url: string, log: Logger): Promise<NatsLink> {
    const options: NodeConnectionOptions = {
      servers: url.split(',').map((s) => s.trim()),
      name: cfg.name,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      timeout: cfg.connectTimeoutMs,
      // A server that stops answering (a partition, a frozen node) is left within ~6 s,
      // for another node of the cluster; the default (2 min) would hold clients that long.
      pingInterval: 2_000,
      maxPingOut: 3,
      ...(cfg.user === undefined ? {} : { user: cfg.user, pass: password(cfg) }),
      ...(cfg.token === undefined ? {} : { token: cfg.token }),
      ...(cfg.credsFile === undefined ? {} : { authenticator: credsAuthenticator(readFileSync(cfg.credsFile)) }),
    };
    const nc = await connect(options);
    log.info({ server: nc.getServer(), serverVersion: nc.info?.version, maxPayloadBytes: nc.info?.max_payload }, 'nats connected');
    return new NatsLink(nc, log);
  }

  /** Reconnections since start. */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /**
   * The server is one node of a cluster: messages it republishes to us may come over
   * routes, where they can be lost without any event to us (a new subscription's
   * interest not yet at the stream leader, a route dropping). On one server a
   * confirmed subscription gets every message or the connection drops.
   */
  get clustered(): boolean {
    return this.nc.info?.cluster !== undefined;
  }

  get connected(): boolean {
    return this.connectedValue && !this.nc.isClosed();
  }

  /** Resolves true once connected, or false after `ms`. */
  waitConnected(ms: number): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    if (this.nc.isClosed()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.connected);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** Called after every reconnect; returns an unsubscribe function. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  /** Called when the connection drops; returns an unsubscribe function. */
  onDisconnect(listener: () => void): () => void {
    this.disconnectListeners.add(listener);
    return () => this.disconnectListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
    this.wake();
    await this.done;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private async watch(): Promise<void> {
    const log = this.log;
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.connectedValue = false;
          log.warn({ server: s.server }, 'nats disconnected');
          for (const l of this.disconnectListeners) l();
          break;
        case 'reconnect':
          this.connectedValue = true;
          this.reconnectCount++;
          log.warn({ server: s.server }, 'nats reconnected');
          this.wake();
          for (const l of this.reconnectListeners) l();
          break;
        case 'error':
          log.error({ err: s.error }, 'nats server error');
          break;
        case 'slowConsumer':
          log.warn({ subject: s.sub.getSubject(), queueLen: s.pending }, 'nats slow consumer');
          break;
        case 'staleConnection':
          log.warn('nats connection stale');
          break;
        case 'ldm':
          log.warn({ server: s.server }, 'nats server entering lame duck mode');
          break;
        default:
          break;
      }
    }
    this.connectedValue = false;
  }
}

/** nats.passwordFile cannot be read: waiting does not help, start-up stops. */
export class NatsPasswordFileError extends Error {
  constructor(file: string, options?: ErrorOptions) {
    super(`nats.passwordFile (PUSH_NATS__PASSWORD_FILE): cannot read ${file}`, options);
    this.name = 'NatsPasswordFileError';
  }
}

/** nats.password, or the content of nats.passwordFile without its trailing newline. */
function password(cfg: Config['nats']): string {
  if (cfg.passwordFile === undefined) return cfg.password ?? '';
  try {
    return readFileSync(cfg.passwordFile, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new NatsPasswordFileError(cfg.passwordFile, { cause: err });
  }
}
