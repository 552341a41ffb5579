import type { AddressInfo } from 'node:net';
import { declarations, MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET, STATS_REPORT_INTERVAL_MS } from '../streams/index.ts';
import { natsPublishHandler } from './api/nats-publish-api.ts';
import { ProtobufRequests } from './api/protobuf-requests.ts';
import type { Config } from './config/schema.ts';
import { GatewayActor } from './gateway/gateway-actor.ts';
import { AdminListener } from './http/admin.ts';
import { readinessRule } from './http/readiness.ts';
import { Listener, type RouteHandlers } from './http/server.ts';
import type { Logger } from './log/logger.ts';
import { Metrics } from './metrics/metrics.ts';
import { NatsAccess } from './nats/nats-access.ts';
import { PUBLISH_QUEUE_GROUP } from './nats/subjects.ts';
import { Presence } from './presence/presence.ts';
import { PublisherActor } from './publisher/publisher-actor.ts';
import { StreamWriter } from './publisher/stream-writer.ts';
import { DailyCounters } from './stats/daily-counters.ts';
import { serverStatSnapshot } from './stats/server-stat-snapshot.ts';
import { ServerStatsReporter } from './stats/server-stats.ts';
import { ChannelIdParser, createSigner } from './wire/channel-id.ts';

export interface App {
  /** Bound addresses, in the order of config.servers. */
  readonly addresses: readonly AddressInfo[];
  /** The internal listener (/healthz, /readyz, /metrics), unless turned off. */
  readonly adminAddress: AddressInfo | undefined;
  readonly gateway: GatewayActor | undefined;
  readonly publisher: PublisherActor;
  /** Idempotent: stops accepting, closes connections, finishes in-flight publishes, drains NATS. */
  stop(): Promise<void>;
  /**
   * Graceful shutdown (SIGTERM): readiness fails and new connections get 503, open
   * ones are closed in batches over gateway.drainWindowMs, publishes keep being
   * served meanwhile and in-flight ones finish; then stop().
   */
  shutdown(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Room for jetpull's headers on top of a body, when checking the server's max_payload. */
const HEADER_ALLOWANCE_BYTES = 4096;

/**
 * The composition root: builds every actor and entry point from the config and wires
 * them to the listeners. Nothing else constructs collaborators.
 *
 * Roles: `gateway` serves client connections (`sub`), `publisher` serves the
 * backend (`pub`, the NATS publish subject), `all` both. Every role can publish
 * client requests (`rest`, binary WebSocket frames) and answer `stat`.
 */
export async function startApp(config: Config, rootLog: Logger, natsUrl: string): Promise<App> {
  const nats = await NatsAccess.open(config.nats, natsUrl, rootLog.child({ actor: 'nats' }));
  const undo: Array<() => Promise<void> | void> = [() => nats.close()];
  try {
    const decl = streamDeclarations(config);
    const messages = (await nats.ensure(decl, rootLog.child({ actor: 'streams' }))).get(MESSAGE_STREAM)!;
    const epochSec = (): number => messages.createdSec;
    const limits = effectiveLimits(config, nats.serverMaxPayloadBytes, rootLog);

    const signer = createSigner(config.security.key, config.security.algo);
    const parser = new ChannelIdParser(signer);
    const counters = new DailyCounters();
    const presence = Presence.fromConfig(await nats.bucket(PRESENCE_BUCKET), config.storage, config.processUniqueId, rootLog.child({ actor: 'presence' }));

    let gateway: GatewayActor | undefined;
    const metrics: Metrics = new Metrics(
      { nats: () => nats.link, publisher: () => publisher.stats(), gateway: () => gateway?.stats() },
      { role: config.role, process: config.processUniqueId },
    );
    const appender = nats.appender();
    const storedReader = nats.streamReader(MESSAGE_STREAM, { replicas: config.storage.streamReplicas });
    undo.push(() => appender.close());
    const publisher: PublisherActor = new PublisherActor(
      rootLog.child({ actor: 'publisher' }),
      new StreamWriter(appender, nats.link, epochSec, (seq) => storedReader.at(seq)),
      config.publisher.mailboxCapacity,
      config.publisher.maxInFlight,
      config.publisher.publishTimeoutMs,
      metrics,
    );
    await publisher.start();
    undo.push(() => publisher.stop());

    const reporter = new ServerStatsReporter(
      await nats.bucket(STATS_BUCKET),
      config.processUniqueId,
      serverStatSnapshot(config, limits, () => gateway?.stats(), counters),
      STATS_REPORT_INTERVAL_MS,
      decl.buckets.find((b) => b.bucket === STATS_BUCKET)!.ttlMs,
      rootLog.child({ actor: 'stats' }),
    );
    const requests = new ProtobufRequests({
      publisher,
      presence,
      signer,
      limits,
      messageTtlSec: config.storage.messageTtlSec,
      counters,
      serverStats: () => reporter.readAll(),
    });

    let natsApi: { stop(): void } | undefined;
    if (config.role !== 'gateway') {
      const apiLog = rootLog.child({ actor: 'nats-publish-api' });
      const handler = natsPublishHandler({
        publisher,
        parser,
        messageTtlSec: config.storage.messageTtlSec,
        maxChannelsPerRequest: limits.maxChannelsPerRequest,
        maxPayloadBytes: limits.maxPayloadBytes,
        log: apiLog,
      });
      natsApi = nats.serve(config.publisher.natsSubject, PUBLISH_QUEUE_GROUP, handler, apiLog);
      undo.push(() => natsApi?.stop());
    }
    if (config.role !== 'publisher') {
      const gatewayLog = rootLog.child({ actor: 'gateway' });
      gateway = new GatewayActor(gatewayLog, epochSec, config.gateway, limits, {
        link: nats.link,
        feed: nats.liveFeed(MESSAGE_STREAM, gatewayLog.child({ component: 'live' })),
        reader: storedReader,
        presence,
        clientRequests: { handle: (bytes, publicId) => requests.handle(bytes, { trusted: false, publicId }) },
        telemetry: metrics,
      });
      await gateway.start();
      undo.push(() => gateway!.stop());
    }
    await reporter.start();
    undo.push(() => reporter.stop());

    const handlers = routeHandlers(config, rootLog, { limits, gateway, publisher, parser, requests, presence, counters, reporter });
    const listeners = config.servers.map((s) => new Listener(s, handlers, rootLog.child({ actor: 'http' })));
    const addresses: AddressInfo[] = [];
    for (const l of listeners) {
      addresses.push(await l.listen());
      undo.push(() => l.close());
    }

    let stopping: Promise<void> | undefined;
    let shuttingDown = false;
    let admin: AdminListener | undefined;
    if (config.admin.port !== -1) {
      admin = new AdminListener(
        config.admin.hostname,
        config.admin.port,
        {
          registry: metrics.registry,
          notReady: readinessRule({
            stopping: () => shuttingDown || stopping !== undefined,
            natsConnected: () => nats.link.connected,
            gatewayAccepting: () => gateway?.accepting,
          }),
        },
        rootLog.child({ actor: 'admin' }),
      );
      await admin.listen();
      undo.push(() => admin!.close());
    }

    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // Stop accepting first, then let each owner close what it holds.
        const closing = listeners.map((l) => l.close());
        await gateway?.stop();
        natsApi?.stop();
        await publisher.stop();
        await reporter.stop();
        for (const l of listeners) l.destroyConnections();
        await Promise.all(closing);
        appender.close();
        await nats.close();
        await admin?.close();
        rootLog.info('stopped');
      })());
    const shutdown = async (): Promise<void> => {
      shuttingDown = true;
      await gateway?.drain();
      await stop();
    };
    rootLog.info({ role: config.role, stream: MESSAGE_STREAM, epoch: epochSec() }, 'started');
    return { addresses, adminAddress: admin?.address, gateway, publisher, stop, shutdown, [Symbol.asyncDispose]: stop };
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw err;
  }
}

/** The JetStream resources this configuration needs (streams/). */
function streamDeclarations(config: Config): ReturnType<typeof declarations> {
  return declarations({
    messageTtlSec: config.storage.messageTtlSec,
    duplicateWindowMs: config.storage.duplicateWindowMs,
    replicas: config.storage.streamReplicas,
    maxBytes: config.storage.streamMaxBytes,
    maxPayloadBytes: config.limits.maxPayloadBytes,
    onlineTtlSec: config.storage.onlineTtlSec,
    onlineDeltaSec: config.storage.onlineDeltaSec,
  });
}

interface RouteParts {
  limits: Config['limits'];
  gateway: GatewayActor | undefined;
  publisher: PublisherActor;
  parser: ChannelIdParser;
  requests: ProtobufRequests;
  presence: Presence;
  counters: DailyCounters;
  reporter: ServerStatsReporter;
}

/** Which routes this process serves, by role, and what each needs. */
function routeHandlers(config: Config, rootLog: Logger, p: RouteParts): RouteHandlers {
  const { limits, gateway, publisher, parser, requests, presence, counters, reporter } = p;
  return {
    maxPayloadBytes: limits.maxPayloadBytes,
    rest: { requests, parser },
    stat: { reporter, counters },
    ...(gateway && {
      subscribe: {
        gateway,
        parser,
        maxChannelsPerConnection: config.gateway.maxChannelsPerConnection,
        log: rootLog.child({ actor: 'gateway', component: 'http' }),
      },
    }),
    ...(config.role !== 'gateway' && {
      publish: {
        publisher,
        parser,
        requests,
        messageTtlSec: config.storage.messageTtlSec,
        maxChannelsPerRequest: limits.maxChannelsPerRequest,
        counters,
        channelStats: { parser, presence, counters, maxChannelsPerRequest: limits.maxChannelsPerRequest },
        log: rootLog.child({ actor: 'publisher', component: 'http' }),
      },
    }),
  };
}

/**
 * limits.maxPayloadBytes, lowered to what the NATS server stores (its max_payload less
 * room for jetpull's headers): a body over it is answered 413 at once instead of being
 * retried into a 503 it could never leave.
 */
function effectiveLimits(config: Config, serverMax: number | undefined, log: Logger): Config['limits'] {
  if (serverMax === undefined || config.limits.maxPayloadBytes + HEADER_ALLOWANCE_BYTES <= serverMax) return config.limits;
  const effective = serverMax - HEADER_ALLOWANCE_BYTES;
  log.warn(
    { maxPayloadBytes: config.limits.maxPayloadBytes, serverMaxPayloadBytes: serverMax, effectiveMaxPayloadBytes: effective },
    'nats max_payload is smaller than limits.maxPayloadBytes; the limit is lowered to fit',
  );
  return { ...config.limits, maxPayloadBytes: effective };
}
