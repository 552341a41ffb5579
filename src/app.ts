import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { Subscription } from '@nats-io/transport-node';
import { declarations, MESSAGE_STREAM, PRESENCE_BUCKET, STATS_BUCKET, STATS_REPORT_INTERVAL_MS } from '../streams/index.ts';
import type { Config } from './config/schema.ts';
import { GatewayActor } from './gateway/gateway-actor.ts';
import { AdminListener } from './http/admin.ts';
import { Listener, type RouteHandlers } from './http/server.ts';
import type { Logger } from './log/logger.ts';
import { Metrics } from './metrics/metrics.ts';
import { NatsLink } from './nats/connection.ts';
import { ensureAll } from './nats/ensure-streams.ts';
import { Presence } from './presence/presence.ts';
import { serveNatsPublish } from './publisher/nats-publish-api.ts';
import { ProtobufRequests } from './publisher/protobuf-requests.ts';
import { PublisherActor } from './publisher/publisher-actor.ts';
import { JetStreamAppender } from './publisher/jetstream-appender.ts';
import { StreamWriter } from './publisher/stream-writer.ts';
import { DailyCounters } from './stats/daily-counters.ts';
import { ServerStatsReporter, type ServerStat } from './stats/server-stats.ts';
import { ChannelIdParser, createSigner } from './wire/channel-id.ts';

export interface App {
  /** Bound addresses, in the order of config.servers. */
  readonly addresses: readonly AddressInfo[];
  /** The internal listener (/healthz, /readyz, /metrics), unless turned off. */
  readonly adminAddress: AddressInfo | undefined;
  readonly link: NatsLink;
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
 * The composition root: builds every actor from the config and wires them to the
 * listeners. Nothing else constructs collaborators.
 *
 * Roles: `gateway` serves client connections (`sub`), `publisher` serves the
 * backend (`pub`, the NATS publish subject), `all` both. Every role can publish
 * client requests (`rest`, binary WebSocket frames) and answer `stat`.
 */
export async function startApp(config: Config, rootLog: Logger, natsUrl: string): Promise<App> {
  const link = await NatsLink.open(config.nats, natsUrl, rootLog.child({ actor: 'nats' }));
  const undo: Array<() => Promise<void>> = [() => link.close()];
  try {
    const nc = link.nc;
    const jsm = await jetstreamManager(nc, { timeout: config.nats.requestTimeoutMs });
    const decl = declarations({
      messageTtlSec: config.storage.messageTtlSec,
      duplicateWindowMs: config.storage.duplicateWindowMs,
      replicas: config.storage.streamReplicas,
      maxBytes: config.storage.streamMaxBytes,
      maxPayloadBytes: config.limits.maxPayloadBytes,
      onlineTtlSec: config.storage.onlineTtlSec,
      onlineDeltaSec: config.storage.onlineDeltaSec,
    });
    const ensured = await ensureAll(nc, jsm, decl, rootLog.child({ actor: 'streams' }));
    const messages = ensured.get(MESSAGE_STREAM)!;
    const epochSec = (): number => messages.createdSec;
    warnOnSmallServerPayload(config, nc.info?.max_payload, rootLog);

    const signer = createSigner(config.security.key, config.security.algo);
    const parser = new ChannelIdParser(signer);
    const counters = new DailyCounters();
    const kvm = new Kvm(nc);
    const onlineTtlMs = (config.storage.onlineTtlSec + config.storage.onlineDeltaSec) * 1000;
    const presence = new Presence(
      await kvm.open(PRESENCE_BUCKET),
      onlineTtlMs,
      // Rewrite a key at most every quarter of its lifetime.
      Math.max(1_000, Math.floor(config.storage.onlineTtlSec * 250)),
      `${hostname()}/${config.processUniqueId}`,
      rootLog.child({ actor: 'presence' }),
    );

    let gateway: GatewayActor | undefined;
    let publisher: PublisherActor | undefined;
    const metrics = new Metrics(
      { nats: () => link, publisher: () => publisher?.stats(), gateway: () => gateway?.stats() },
      { role: config.role, process: config.processUniqueId },
    );
    const appender = new JetStreamAppender(nc);
    undo.push(async () => appender.close());
    const writer = new StreamWriter(appender, link, epochSec);
    publisher = new PublisherActor(
      rootLog.child({ actor: 'publisher' }),
      writer,
      config.publisher.mailboxCapacity,
      config.publisher.maxInFlight,
      config.publisher.publishTimeoutMs,
      metrics,
    );
    await publisher.start();
    undo.push(() => publisher!.stop());

    const snapshot = (): ServerStat => {
      const g = gateway?.stats();
      return {
        pid: process.pid,
        date: Date.now(),
        processUniqueId: config.processUniqueId,
        channels: g?.privateChannels ?? 0,
        limits: {
          maxPayload: config.limits.maxPayloadBytes,
          maxConnPerChannel: config.limits.maxConnPerChannel,
          maxMessagesPerRequest: config.limits.maxMessagesPerRequest,
          maxChannelsPerRequest: config.limits.maxChannelsPerRequest,
        },
        clusterMode: true,
        websockets: g?.websockets ?? 0,
        pollings: g?.pollings ?? 0,
        daily: counters.snapshot(),
      };
    };
    const reporter = new ServerStatsReporter(
      await kvm.open(STATS_BUCKET),
      config.processUniqueId,
      snapshot,
      STATS_REPORT_INTERVAL_MS,
      decl.buckets.find((b) => b.bucket === STATS_BUCKET)!.ttlMs,
      rootLog.child({ actor: 'stats' }),
    );
    const requests = new ProtobufRequests({
      publisher,
      presence,
      signer,
      limits: config.limits,
      messageTtlSec: config.storage.messageTtlSec,
      counters,
      serverStats: () => reporter.readAll(),
      log: rootLog.child({ actor: 'publisher', component: 'protobuf' }),
    });

    let natsApi: Subscription | undefined;
    if (config.role !== 'gateway') {
      natsApi = serveNatsPublish({
        nc,
        subject: config.publisher.natsSubject,
        publisher,
        parser,
        messageTtlSec: config.storage.messageTtlSec,
        maxChannelsPerRequest: config.limits.maxChannelsPerRequest,
        maxPayloadBytes: config.limits.maxPayloadBytes,
        log: rootLog.child({ actor: 'nats-publish-api' }),
      });
      undo.push(async () => natsApi?.unsubscribe());
    }
    if (config.role !== 'publisher') {
      gateway = new GatewayActor(rootLog.child({ actor: 'gateway' }), epochSec, config.gateway, config.limits, {
        link,
        js: jetstream(nc, { timeout: config.nats.requestTimeoutMs }),
        jsm,
        streamName: MESSAGE_STREAM,
        presence,
        clientRequests: requests,
        telemetry: metrics,
      });
      await gateway.start();
      undo.push(() => gateway!.stop());
    }
    await reporter.start();
    undo.push(() => reporter.stop());

    const handlers: RouteHandlers = {
      maxPayloadBytes: config.limits.maxPayloadBytes,
      rest: { requests, parser },
      stat: { reporter, counters },
      ...(gateway
        ? {
            subscribe: {
              gateway,
              parser,
              maxChannelsPerConnection: config.gateway.maxChannelsPerConnection,
              log: rootLog.child({ actor: 'gateway', component: 'http' }),
            },
          }
        : {}),
      ...(config.role !== 'gateway'
        ? {
            publish: {
              publisher,
              parser,
              requests,
              messageTtlSec: config.storage.messageTtlSec,
              maxChannelsPerRequest: config.limits.maxChannelsPerRequest,
              counters,
              channelStats: { parser, presence, counters, maxChannelsPerRequest: config.limits.maxChannelsPerRequest },
              log: rootLog.child({ actor: 'publisher', component: 'http' }),
            },
          }
        : {}),
    };
    const listeners = config.servers.map((s) => new Listener(s, handlers, rootLog.child({ actor: 'http' })));
    const addresses: AddressInfo[] = [];
    for (const l of listeners) {
      addresses.push(await l.listen());
      undo.push(() => l.close());
    }

    let stopping: Promise<void> | undefined;
    let shuttingDown = false;
    let admin: AdminListener | undefined;
    let adminAddress: AddressInfo | undefined;
    if (config.admin.port !== -1) {
      admin = new AdminListener(
        config.admin.hostname,
        config.admin.port,
        {
          registry: metrics.registry,
          notReady: () => {
            if (shuttingDown || stopping !== undefined) return 'shutting down';
            if (!link.connected) return 'nats disconnected';
            if (gateway !== undefined && !gateway.accepting) return 'gateway draining';
            return undefined;
          },
        },
        rootLog.child({ actor: 'admin' }),
      );
      adminAddress = await admin.listen();
      undo.push(() => admin!.close());
    }

    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // Stop accepting first, then let each owner close what it holds.
        const closing = listeners.map((l) => l.close());
        await gateway?.stop();
        natsApi?.unsubscribe();
        await publisher.stop();
        await reporter.stop();
        for (const l of listeners) l.destroyConnections();
        await Promise.all(closing);
        appender.close();
        await link.close();
        await admin?.close();
        rootLog.info('stopped');
      })());
    const shutdown = async (): Promise<void> => {
      shuttingDown = true;
      await gateway?.drain();
      await stop();
    };
    rootLog.info({ role: config.role, stream: MESSAGE_STREAM, epoch: epochSec() }, 'started');
    return { addresses, adminAddress, link, gateway, publisher, stop, shutdown, [Symbol.asyncDispose]: stop };
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    throw err;
  }
}

function warnOnSmallServerPayload(config: Config, serverMax: number | undefined, log: Logger): void {
  if (serverMax !== undefined && config.limits.maxPayloadBytes + HEADER_ALLOWANCE_BYTES > serverMax) {
    log.warn(
      { maxPayloadBytes: config.limits.maxPayloadBytes, serverMaxPayloadBytes: serverMax },
      'nats max_payload is smaller than limits.maxPayloadBytes; raise max_payload in the NATS config or larger messages fail',
    );
  }
}
