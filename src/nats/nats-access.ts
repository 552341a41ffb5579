import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Declarations } from '../../streams/schema.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import { NatsLink } from './connection.ts';
import { ensureAll, type EnsuredStream } from './ensure-streams.ts';
import { JetStreamAppender } from './jetstream-appender.ts';
import { KvStore } from './kv-store.ts';
import { LiveFeed } from './live-feed.ts';
import { serveRequests, type RequestHandler } from './request-server.ts';
import { StreamReader, type StreamReaderOptions } from './stream-reader.ts';

/**
 * Everything the rest of the process gets from NATS, built on its one connection:
 * the stream resources applied from streams/, the appender that writes messages, the
 * reader and the live feed of the message stream, KV buckets and request/reply
 * serving. The composition root takes these; nothing outside nats/ sees a NATS type.
 */
export class NatsAccess {
  private constructor(
    readonly link: NatsLink,
    private readonly jsm: JetStreamManager,
    private readonly cfg: Config['nats'],
  ) {}

  static async open(cfg: Config['nats'], url: string, log: Logger): Promise<NatsAccess> {
    const link = await NatsLink.open(cfg, url, log);
    try {
      return new NatsAccess(link, await jetstreamManager(link.nc, { timeout: cfg.requestTimeoutMs }), cfg);
    } catch (err) {
      await link.close();
      throw err;
    }
  }

  /** Largest message the server accepts (bytes), as it announced on connect. */
  get serverMaxPayloadBytes(): number | undefined {
    return this.link.nc.info?.max_payload;
  }

  /** Creates or brings in line every declared stream and bucket. */
  ensure(decl: Declarations, log: Logger): Promise<Map<string, EnsuredStream>> {
    return ensureAll(this.link.nc, this.jsm, decl, log);
  }

  appender(): JetStreamAppender {
    return new JetStreamAppender(this.link.nc);
  }

  streamReader(stream: string, opts?: StreamReaderOptions): StreamReader {
    return new StreamReader(jetstream(this.link.nc, { timeout: this.cfg.requestTimeoutMs }), this.jsm, stream, opts);
  }

  liveFeed(stream: string, log: Logger): LiveFeed {
    return new LiveFeed(this.link.nc, stream, log);
  }

  bucket(name: string): Promise<KvStore> {
    return KvStore.open(this.link.nc, name);
  }

  serve(subject: string, queue: string, handle: RequestHandler, log: Logger): { stop(): void } {
    return serveRequests(this.link.nc, subject, queue, handle, log);
  }

  close(): Promise<void> {
    return this.link.close();
  }
}
