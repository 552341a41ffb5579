import type { AddressInfo } from 'node:net';
import { MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET, STATS_REPORT_INTERVAL_MS } from '../streams/index.ts';
import { natsPublishHandler } from './api/nats-publish-api.ts';
import { BackendRpcMethods } from './api/backend-json-rpc.ts';
import { ClientRate } from './api/client-rate.ts';
import { JsonRpcMethods } from './api/json-rpc-methods.ts';
import { ProtobufRequests } from './api/protobuf-requests.ts';
import { effectiveLimits, memoryWatermarkBytes, streamDeclarations, ttlPolicy } from './config/derived.ts';
import type { Config } from './config/schema.ts';
import { DemoAssets } from './demo/assets.ts';
import { DemoRoutes } from './demo/demo-routes.ts';
import { GatewayActor } from './gateway/gateway-actor.ts';
import { AdminListener } from './http/admin.ts';
import { readinessRule } from './http/readiness.ts';
import { OriginPolicy } from './http/origin-policy.ts';
import { routeHandlers } from './http/route-handlers.ts';
import { Listener } from './http/server.ts';
import type { Logger } from './log/logger.ts';
import { Metrics } from './metrics/metrics.ts';
import { NatsAccess } from './nats/nats-access.ts';
import { StreamWatch } from './nats/stream-watch.ts';
import { PUBLISH_QUEUE_GROUP } from './nats/subjects.ts';
import { Presence } from './presence/presence.ts';
import { StatusWatch } from './presence/status-watch.ts';
import { PublisherActor } from './publisher/publisher-actor.ts';
import { BatchPolicy } from './publisher/batch-policy.ts';
import { StreamWriter } from './publisher/stream-writer.ts';
import { DailyCounters } from './stats/daily-counters.ts';
import { ReplayWindowWatch, type ReplayWindow } from './stats/replay-window.ts';
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
  /** Reads the listeners' TLS files again (SIGHUP). */
  reloadTls(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** How often the message stream's position and identity are checked. */
const STREAM_CHECK_INTERVAL_MS = 2_000;


/**
 * The composition root: builds every actor and entry point from the config and wires
 * them to the listeners. Nothing else constructs collaborators.
 *
 * Roles: `gateway` serves client connections (`sub`), `publisher` serves the
 * backend (`pub`, the NATS publish subject), `all` both. Every role can publish
 * client requests (`rest`, binary WebSocket frames) and answer `stat`.
 */
export async function startApp(config: Config, rootLog: Logger, natsUrl: string): Promise<App> {
  const undo: Array<() => Promise<void> | void> = [];
  // Readiness while starting says what the process waits for; undefined once started.
  let starting: string | undefined = 'starting';
  let stopping: Promise<void> | undefined;
  let shuttingDown = false;
  let nats: NatsAccess | undefined;
  let gateway: GatewayActor | undefined;
  let publisher: PublisherActor | undefined;
  let clientPublisher: PublisherActor | undefined;
  let watch: StreamWatch | undefined;
  let replayWindow: (() => ReplayWindow) | undefined;
  const metrics: Metrics = new Metrics(
    {
      nats: () => nats?.link ?? { connected: false, reconnects: 0 },
      publishers: () => publisher && clientPublisher && { portal: publisher.stats(), client: clientPublisher.stats() },
      gateway: () => gateway?.stats(),
      stream: () => watch?.position && { replayWindowSec: replayWindow?.().seconds, messages: watch.position.messages, bytes: watch.position.bytes },
    },
    { role: config.role, process: config.processUniqueId },
  );
  const demoLog = rootLog.child({ actor: 'demo' });
  const demo = config.admin.demo && config.admin.port !== -1 ? new DemoRoutes(new DemoAssets(demoLog), demoLog) : undefined;
  // The admin listener comes first: /healthz answers and /readyz says why not yet while NATS is awaited.
  const admin =
    config.admin.port === -1
      ? undefined
      : new AdminListener(
          config.admin.hostname,
          config.admin.port,
          {
            registry: metrics.registry,
            maxBodyBytes: config.limits.maxPayloadBytes,
            notReady: readinessRule({
              starting: () => starting,
              stopping: () => shuttingDown || stopping !== undefined,
              natsConnected: () => nats?.link.connected ?? false,
              gatewayAccepting: () => gateway?.accepting,
              memoryHigh: () => gateway?.memory.isHigh,
            }),
          },
          rootLog.child({ actor: 'admin' }),
          demo,
        );
  await admin?.listen();
  try {
    undo.push(() => admin?.close());
    const natsLog = rootLog.child({ actor: 'nats' });
    const waiting = (reason: string): void => {
      starting = `starting: ${reason}`;
    };
    const access = await NatsAccess.open(config.nats, natsUrl, natsLog, waiting);
    nats = access;
    undo.push(() => access.close());
    // Per-message TTL came with nats-server 2.11, atomic batches with 2.12 (older servers are not sent
    // the field; a single-replica stream does not get it, see BatchPolicy); the echo of the stream
    // config decides in the end.
    const atomicBatch = access.serverAtLeast(2, 12) && config.storage.streamReplicas > 1;
    const decl = streamDeclarations(config, { perMessageTtl: access.serverAtLeast(2, 11), atomicBatch });
    const streamsLog = rootLog.child({ actor: 'streams' });
    // Publishing processes own the streams' settings; gateways only create what is missing.
    const messages = (await access.ensure(decl, streamsLog, { updateExisting: config.role !== 'gateway', waiting })).get(MESSAGE_STREAM)!;
    const storedReader = access.streamReader(MESSAGE_STREAM, { replicas: config.storage.streamReplicas, batchDirectGet: access.serverAtLeast(2, 11) });
    const streamWatch = new StreamWatch(
      storedReader,
      async () => (await access.ensureStream(messages.spec, streamsLog)).createdSec,
      messages.createdSec,
      STREAM_CHECK_INTERVAL_MS,
      streamsLog,
    );
    watch = streamWatch;
    streamWatch.start();
    undo.push(() => streamWatch.stop());
    const windowWatch = new ReplayWindowWatch(config.storage.messageTtlSec, streamsLog);
    streamWatch.onPosition((pos) => pos !== undefined && windowWatch.of(pos));
    replayWindow = () => windowWatch.of(streamWatch.position);
    const epochSec = (): number => streamWatch.epochSec;
    const limits = effectiveLimits(config, access.serverMaxPayloadBytes, rootLog);

    const signer = createSigner(signatureKeys(config), config.security.algo);
    if (!signer.hasKey) {
      rootLog.warn({ setting: 'security.key', env: 'PUSH_SECURITY__KEY' }, 'no security key: unsigned private channel ids are accepted');
    }
    const parser = new ChannelIdParser(signer);
    const counters = new DailyCounters();
    const presence = Presence.fromConfig(await access.bucket(PRESENCE_BUCKET), config.storage, config.processUniqueId, rootLog.child({ actor: 'presence' }));

    const appender = access.appender();
    undo.push(() => appender.close());
    const publisherLog = rootLog.child({ actor: 'publisher' });
    const batches = new BatchPolicy(messages.atomicBatch, config.publisher.atomicBatchMaxReceivers, publisherLog);
    const writer = new StreamWriter(appender, access.link, streamWatch, (seq) => storedReader.at(seq), messages.perMessageTtl ? ttlPolicy(config.storage) : () => undefined, batches);
    const { mailboxCapacity, maxInFlight, clientMailboxCapacity, clientMaxInFlight, publishTimeoutMs } = config.publisher;
    const publishing = new PublisherActor(publisherLog, writer, mailboxCapacity, maxInFlight, publishTimeoutMs, metrics, 'portal');
    const clientPublishing = new PublisherActor(publisherLog.child({ lane: 'client' }), writer, clientMailboxCapacity, clientMaxInFlight, publishTimeoutMs, metrics, 'client');
    publisher = publishing;
    clientPublisher = clientPublishing;
    await Promise.all([publishing.start(), clientPublishing.start()]);
    undo.push(() => Promise.all([publishing.stop(), clientPublishing.stop()]).then(() => undefined));

    const reporter = new ServerStatsReporter(
      await access.bucket(STATS_BUCKET),
      config.processUniqueId,
      serverStatSnapshot(config, limits, () => gateway?.stats(), counters, () => windowWatch.of(streamWatch.position), signer.keyCount),
      STATS_REPORT_INTERVAL_MS,
      decl.buckets.find((b) => b.bucket === STATS_BUCKET)!.ttlMs,
      rootLog.child({ actor: 'stats' }),
    );
    const requests = new ProtobufRequests({
      publisher: publishing,
      clientPublisher: clientPublishing,
      presence,
      signer,
      limits,
      messageTtlSec: config.storage.messageTtlSec,
      counters,
      serverStats: () => reporter.readAll(),
    });

    const statusWatch = new StatusWatch(presence, publishing, { pollMs: config.gateway.userStatusPollMs, maxPerConnection: limits.maxChannelsPerRequest }, rootLog.child({ actor: 'gateway', component: 'status-watch' }));
    statusWatch.start();
    undo.push(() => statusWatch.stop());
    const rpcMethods = new JsonRpcMethods({ requests, presence, counters, maxUsersPerCall: limits.maxChannelsPerRequest, statusWatch });
    const backendRpc = new BackendRpcMethods({ publisher: publishing, presence, limits, messageTtlSec: config.storage.messageTtlSec, counters });
    const clientRate = new ClientRate(limits, metrics);

    let natsApi: { stop(): void } | undefined;
    if (config.role !== 'gateway') {
      const apiLog = rootLog.child({ actor: 'nats-publish-api' });
      const handler = natsPublishHandler({
        publisher: publishing,
        parser,
        messageTtlSec: config.storage.messageTtlSec,
        maxChannelsPerRequest: limits.maxChannelsPerRequest,
        maxPayloadBytes: limits.maxPayloadBytes,
        maxMessagesPerRequest: limits.maxMessagesPerRequest,
        log: apiLog,
      });
      natsApi = access.serve(config.publisher.natsSubject, PUBLISH_QUEUE_GROUP, handler, apiLog);
      undo.push(() => natsApi?.stop());
    }
    if (config.role !== 'publisher') {
      const gatewayLog = rootLog.child({ actor: 'gateway' });
      gateway = new GatewayActor(gatewayLog, epochSec, config.gateway, limits, {
        link: access.link,
        feed: access.liveFeed(MESSAGE_STREAM, gatewayLog.child({ component: 'live' }), config.gateway.liveSubscription),
        reader: storedReader,
        watch: streamWatch,
        presence,
        clientRequests: {
          handle: (bytes, publicId) => requests.handle(bytes, { trusted: false, publicId }),
          waitTurn: (key, gone, by) => clientRate.waitTurn(key, gone, by),
        },
        rpcMethods,
        onSessionClosed: (s) => statusWatch.forget(s),
        telemetry: metrics,
        memoryWatermarkBytes: memoryWatermarkBytes(config),
      });
      await gateway.start();
      undo.push(() => gateway!.stop());
    }
    await reporter.start();
    undo.push(() => reporter.stop());

    const handlers = routeHandlers(config, rootLog, { limits, gateway, publisher: publishing, parser, signer, requests, rpcMethods, backendRpc, clientRate, presence, counters, reporter });
    const listeners = config.servers.map((s) => new Listener(s, handlers, rootLog.child({ actor: 'http' })));
    const addresses: AddressInfo[] = [];
    for (const l of listeners) {
      addresses.push(await l.listen());
      undo.push(() => l.close());
    }

    if (demo && admin?.address) {
      const listening = config.servers.map((cfg, i) => ({ cfg, address: addresses[i]! }));
      const origins = new OriginPolicy(config.security.allowedOrigins);
      demo.attach({ publisher: publishing, presence, signer, origins, listeners: listening, messageTtlSec: config.storage.messageTtlSec, maxPayloadBytes: limits.maxPayloadBytes });
      demoLog.info({ url: `http://${config.admin.hostname}:${admin.address.port}/demo` }, 'demo page served');
    }

    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // Stop accepting first, then let each owner close what it holds.
        const closing = listeners.map((l) => l.close());
        await gateway?.stop();
        natsApi?.stop();
        await Promise.all([publishing.stop(), clientPublishing.stop()]);
        await reporter.stop();
        for (const l of listeners) l.destroyConnections();
        await Promise.all(closing);
        appender.close();
        streamWatch.stop();
        await access.close();
        await admin?.close();
        rootLog.info('stopped');
      })());
    const shutdown = async (): Promise<void> => {
      shuttingDown = true;
      await gateway?.drain();
      await stop();
    };
    starting = undefined;
    rootLog.info({ role: config.role, stream: MESSAGE_STREAM, epoch: epochSec() }, 'started');
    const reloadTls = (): void => {
      for (const l of listeners) l.reloadTls();
    };
    return { addresses, adminAddress: admin?.address, gateway, publisher: publishing, stop, shutdown, reloadTls, [Symbol.asyncDispose]: stop };
  } catch (err) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw err;
  }
}

/** The key that signs, then the previous ones that still verify. */
function signatureKeys(config: Config): string[] {
  return config.security.key === undefined ? [] : [config.security.key, ...(config.security.previousKeys ?? [])];
}
