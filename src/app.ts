import type { AddressInfo } from 'node:net';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import { declarations, MESSAGE_STREAM } from '../streams/index.ts';
import type { Config } from './config/schema.ts';
import { GatewayActor } from './gateway/gateway-actor.ts';
import { Listener, type RouteHandlers } from './http/server.ts';
import type { Logger } from './log/logger.ts';
import { NatsLink } from './nats/connection.ts';
import { ensureAll } from './nats/ensure-streams.ts';
import { serveNatsPublish } from './publisher/nats-publish-api.ts';
import { PublisherActor } from './publisher/publisher-actor.ts';
import { StreamWriter } from './publisher/stream-writer.ts';
import { ChannelIdParser, createSigner } from './wire/channel-id.ts';

export interface App {
  /** Bound addresses, in the order of config.servers. */
  readonly addresses: readonly AddressInfo[];
  readonly link: NatsLink;
  readonly gateway: GatewayActor | undefined;
  readonly publisher: PublisherActor | undefined;
  /** Idempotent: stops accepting, closes connections, finishes in-flight publishes, drains NATS. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Room for jetpull's headers on top of a body, when checking the server's max_payload. */
const HEADER_ALLOWANCE_BYTES = 4096;

/**
 * The composition root: builds every actor from the config and wires them to the
 * listeners. Nothing else constructs collaborators.
 */
export async function startApp(config: Config, rootLog: Logger, natsUrl: string): Promise<App> {
  const link = await NatsLink.open(config.nats, natsUrl, rootLog.child({ actor: 'nats' }));
  const started: Array<() => Promise<void>> = [() => link.close()];
  try {
    const nc = link.nc;
    const jsm = await jetstreamManager(nc, { timeout: config.nats.requestTimeoutMs });
    const decl = declarations({
      messageTtlSec: config.storage.messageTtlSec,
      duplicateWindowMs: config.storage.duplicateWindowMs,
      replicas: config.storage.streamReplicas,
      maxBytes: config.storage.streamMaxBytes,
      maxPayloadBytes: config.limits.maxPayloadBytes,
    });
    const ensured = await ensureAll(nc, jsm, decl, rootLog.child({ actor: 'streams' }));
    const messages = ensured.get(MESSAGE_STREAM)!;
    const epochSec = (): number => messages.createdSec;

    const serverMax = nc.info?.max_payload ?? Number.MAX_SAFE_INTEGER;
    if (config.limits.maxPayloadBytes + HEADER_ALLOWANCE_BYTES > serverMax) {
      rootLog.warn(
        { maxPayloadBytes: config.limits.maxPayloadBytes, serverMaxPayloadBytes: serverMax },
        'nats max_payload is smaller than limits.maxPayloadBytes; raise max_payload in the NATS config or larger messages fail',
      );
    }

    const signer = createSigner(config.security.key, config.security.algo);
    const parser = new ChannelIdParser(signer);
    const servesPublish = config.role !== 'gateway';
    const servesGateway = config.role !== 'publisher';

    let publisher: PublisherActor | undefined;
    let natsApi: Subscription | undefined;
    if (servesPublish) {
      const writer = new StreamWriter(jetstream(nc, { timeout: config.publisher.publishTimeoutMs }), link, epochSec);
      publisher = new PublisherActor(
        rootLog.child({ actor: 'publisher' }),
        writer,
        config.publisher.mailboxCapacity,
        config.publisher.maxInFlight,
        config.publisher.publishTimeoutMs,
      );
      await publisher.start();
      started.push(() => publisher!.stop());
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
      started.push(async () => natsApi?.unsubscribe());
    }

    let gateway: GatewayActor | undefined;
    if (servesGateway) {
      gateway = new GatewayActor(
        rootLog.child({ actor: 'gateway' }),
        nc,
        jsm,
        MESSAGE_STREAM,
        epochSec,
        config.gateway,
        config.limits,
      );
      await gateway.start();
      started.push(() => gateway!.stop());
    }

    const handlers: RouteHandlers = {
      maxPayloadBytes: config.limits.maxPayloadBytes,
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
      ...(publisher
        ? {
            publish: {
              publisher,
              parser,
              messageTtlSec: config.storage.messageTtlSec,
              maxChannelsPerRequest: config.limits.maxChannelsPerRequest,
              log: rootLog.child({ actor: 'publisher', component: 'http' }),
            },
          }
        : {}),
    };
    const listeners = config.servers.map((s) => new Listener(s, handlers, rootLog.child({ actor: 'http' })));
    const addresses: AddressInfo[] = [];
    for (const l of listeners) addresses.push(await l.listen());

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        // Stop accepting first, then let each owner close what it holds.
        const closing = listeners.map((l) => l.close());
        await gateway?.stop();
        natsApi?.unsubscribe();
        await publisher?.stop();
        for (const l of listeners) l.destroyConnections();
        await Promise.all(closing);
        await link.close();
        rootLog.info('stopped');
      })());
    rootLog.info({ role: config.role, stream: MESSAGE_STREAM, epoch: epochSec() }, 'started');
    return { addresses, link, gateway, publisher, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    for (const undo of started.reverse()) await undo().catch(() => undefined);
    throw err;
  }
}
