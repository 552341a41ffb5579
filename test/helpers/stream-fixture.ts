import { declarations, MESSAGE_STREAM } from '../../streams/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { createRootLogger, type Logger } from '../../src/log/logger.ts';
import type { JetStreamAppender } from '../../src/nats/jetstream-appender.ts';
import type { LiveFeed } from '../../src/nats/live-feed.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';
import type { StreamReader } from '../../src/nats/stream-reader.ts';
import { newPublishId } from '../../src/nats/stored-message.ts';
import { LogSink } from './log-sink.ts';
import { startTestNats, type TestNats } from './nats-server.ts';

/**
 * The message stream on a real nats-server, applied from streams/ as the app does,
 * with the pieces the gateway is built from: the stream reader, the live feed and an
 * appender to store messages with.
 */
export class StreamFixture {
  readonly logs = new LogSink();
  readonly log: Logger = createRootLogger({ level: 'debug', processUniqueId: 'fixture', version: 'test' }, this.logs);

  private constructor(
    readonly server: TestNats,
    readonly nats: NatsAccess,
    readonly config: Config,
    readonly epochSec: number,
    readonly reader: StreamReader,
    readonly appender: JetStreamAppender,
  ) {}

  static async start(): Promise<StreamFixture> {
    const server = await startTestNats();
    const config = parseConfig({ nats: { url: server.url } });
    const log = createRootLogger({ level: 'silent', processUniqueId: 'fixture', version: 'test' });
    const nats = await NatsAccess.open(config.nats, server.url, log);
    const decl = declarations({
      messageTtlSec: config.storage.messageTtlSec,
      duplicateWindowMs: config.storage.duplicateWindowMs,
      replicas: 1,
      maxBytes: -1,
      maxPayloadBytes: config.limits.maxPayloadBytes,
      onlineTtlSec: config.storage.onlineTtlSec,
      onlineDeltaSec: config.storage.onlineDeltaSec,
      perMessageTtl: false,
      atomicBatch: nats.serverAtLeast(2, 12),
    });
    const messages = (await nats.ensure(decl, log, { updateExisting: true })).get(MESSAGE_STREAM)!;
    return new StreamFixture(server, nats, config, messages.createdSec, nats.streamReader(MESSAGE_STREAM), nats.appender());
  }

  /** A live feed that loses every message `drop` says it loses, as a failing republish would. */
  feed(drop: (m: StoredMessage) => boolean = () => false): LiveFeed {
    const real = this.nats.liveFeed(MESSAGE_STREAM, this.log);
    return Object.assign(Object.create(real) as LiveFeed, {
      subscribe: (key: string, onMessage: (m: StoredMessage) => void) => real.subscribe(key, (m) => (drop(m) ? undefined : onMessage(m))),
    });
  }

  /** Stores one message on a channel and returns its sequence. */
  async store(key: string, expirySec = 3600, body: object = { at: Date.now() }): Promise<number> {
    const ack = await this.appender.append(key, Buffer.from(JSON.stringify(body)), newPublishId(), { expirySec }, 5_000);
    return ack.seq;
  }

  async stop(): Promise<void> {
    this.appender.close();
    await this.nats.close();
    await this.server.stop();
  }
}
