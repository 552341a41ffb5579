import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { AuthorizationError, UserAuthenticationExpiredError } from '@nats-io/transport-node';
import { backoffMs } from '../util/backoff.ts';
import { delay } from '../util/deferred.ts';
import type { Declarations, StreamSpec } from '../../streams/schema.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { NatsLink, NatsPasswordFileError } from './connection.ts';
import { ensureAll, ensureStream, StreamDriftError, StreamFeatureError, type EnsuredStream } from './ensure-streams.ts';
import { JetStreamAppender } from './jetstream-appender.ts';
import { KvStore } from './kv-store.ts';
import { LiveFeed, type LiveSubscriptionMode } from './live-feed.ts';
import { serveRequests, type RequestHandler } from './request-server.ts';
import { StreamReader, type StreamReaderOptions } from './stream-reader.ts';

/** Time allowed for one read of the message stream (a position, a direct get). */
const READ_TIMEOUT_MS = 2_000;
/** Time the metadata leader gets to answer before a scan is started (it answers in milliseconds when there is one). */
const PROBE_TIMEOUT_MS = 1_000;

/**
 * Everything the rest of the process gets from NATS, built on its one connection:
 * the stream resources applied from streams/, the appender that writes messages, the
 * reader and the live feed of the message stream, KV buckets and request/reply
 * serving. The composition root takes these; nothing outside nats/ sees a NATS type.
 */
export class NatsAccess {
  /** The puts of every bucket opened here. */
  private kvAppender: JetStreamAppender | undefined;

  private constructor(
    readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
    /** For the stream reader: reads and positions fail fast while a stream has no leader, and are retried. */
    private readonly readJsm: JetStreamManager,
    /** Asks whether the cluster has a metadata leader before a scan creates a consumer (see StreamReader). */
    private readonly probeJsm: JetStreamManager,
    private readonly cfg: Config['nats'],
  ) {}

  /**
   * Connects, waiting as long as it takes: NATS may start after jetpull (compose, a
   * rolling restart). Each failed attempt is logged with the reason and the next try
   * comes after a growing, jittered pause; `waiting` tells the caller why it is not ready.
   */
  static async open(cfg: Config['nats'], url: string, log: Logger, waiting: (reason: string) => void = () => undefined): Promise<NatsAccess> {
    for (let attempt = 1; ; attempt++) {
      let link: NatsLink | undefined;
      try {
        link = await NatsLink.open(cfg, url, log);
        const jsm = await jetstreamManager(link.nc, { timeout: cfg.requestTimeoutMs });
        const readJsm = await jetstreamManager(link.nc, { timeout: Math.min(cfg.requestTimeoutMs, READ_TIMEOUT_MS), checkAPI: false });
        const probeJsm = await jetstreamManager(link.nc, { timeout: Math.min(cfg.requestTimeoutMs, PROBE_TIMEOUT_MS), checkAPI: false });
        return new NatsAccess(link, jsm, readJsm, probeJsm, cfg);
      } catch (err) {
        await link?.close().catch(() => undefined);
        // Wrong credentials do not heal by waiting: say so and stop.
        if (err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError || err instanceof NatsPasswordFileError) throw err;
        const retryInMs = backoffMs(attempt);
        waiting(link === undefined ? 'nats not reachable' : 'jetstream not available');
        log.warn({ err, attempt, retryInMs, servers: url.split(',').length }, link === undefined ? 'nats not reachable, retrying' : 'jetstream not available, retrying');
        await delay(retryInMs);
      }
    }
  }

  /** The connected server's release is at least `major.minor` (features of newer servers are used only then). */
  serverAtLeast(major: number, minor: number): boolean {
    const [maj = 0, min = 0] = (this.link.nc.info?.version ?? '0.0.0').split('.').map((p) => Number.parseInt(p, 10));
    return maj > major || (maj === major && min >= minor);
  }

  /** Largest message the server accepts (bytes), as it announced on connect. */
  get serverMaxPayloadBytes(): number | undefined {
    return this.link.nc.info?.max_payload;
  }

  /**
   * Creates or brings in line every declared stream and bucket. A cluster that is still
   * forming ("no suitable peers for placement", "JetStream system temporarily
   * unavailable", timeouts) is waited for, with the reason logged; a declaration that
   * conflicts with the server's stream is not and fails.
   */
  async ensure(decl: Declarations, log: Logger, opts: { updateExisting: boolean; waiting?: (reason: string) => void }): Promise<Map<string, EnsuredStream>> {
    const waiting = opts.waiting ?? (() => undefined);
    for (let attempt = 1; ; attempt++) {
      try {
        return await ensureAll(this.link.nc, this.jsm, decl, log, opts.updateExisting);
      } catch (err) {
        if (err instanceof StreamDriftError || err instanceof StreamFeatureError) throw err;
        const retryInMs = backoffMs(attempt);
        waiting('waiting for jetstream');
        log.warn({ err, attempt, retryInMs }, 'jetstream not ready for the streams, retrying');
        await delay(retryInMs);
      }
    }
  }

  /** Creates or brings in line one declared stream. */
  ensureStream(spec: StreamSpec, log: Logger): Promise<EnsuredStream> {
    return ensureStream(this.jsm, spec, log);
  }

  appender(): JetStreamAppender {
    return new JetStreamAppender(this.link.nc);
  }

  streamReader(stream: string, opts?: StreamReaderOptions): StreamReader {
    return new StreamReader({ js: jetstream(this.link.nc, { timeout: this.cfg.requestTimeoutMs }), probe: this.probeJsm }, this.readJsm, stream, opts);
  }

  liveFeed(stream: string, log: Logger, mode?: LiveSubscriptionMode): LiveFeed {
    return new LiveFeed(this.link.nc, stream, log, mode);
  }

  bucket(name: string): Promise<KvStore> {
    this.kvAppender ??= new JetStreamAppender(this.link.nc);
    return KvStore.open(this.link.nc, name, { appender: this.kvAppender, timeoutMs: this.cfg.requestTimeoutMs });
  }

  serve(subject: string, queue: string, handle: RequestHandler, log: Logger): { stop(): void } {
    return serveRequests(this.link.nc, subject, queue, handle, log);
  }

  close(): Promise<void> {
    this.kvAppender?.close();
    return this.link.close();
  }
}
