import type { BackendRpcMethods } from '../api/backend-json-rpc.ts';
import type { ClientRate } from '../api/client-rate.ts';
import type { ProtobufRequests } from '../api/protobuf-requests.ts';
import type { Config } from '../config/schema.ts';
import type { RpcMethods } from '../gateway/client-requests.ts';
import type { GatewayActor } from '../gateway/gateway-actor.ts';
import type { Logger } from '../log/logger.ts';
import type { Presence } from '../presence/presence.ts';
import type { PublisherActor } from '../publisher/publisher-actor.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import type { ServerStatsReporter } from '../stats/server-stats.ts';
import type { ChannelIdParser, Signer } from '../wire/channel-id.ts';
import { ClientAddress } from './client-address.ts';
import { OriginPolicy } from './origin-policy.ts';
import { PublishSignature } from './publish-signature.ts';
import type { RouteHandlers } from './server.ts';

export interface RouteParts {
  limits: Config['limits'];
  gateway: GatewayActor | undefined;
  publisher: PublisherActor;
  parser: ChannelIdParser;
  signer: Signer;
  requests: ProtobufRequests;
  rpcMethods: RpcMethods;
  backendRpc: BackendRpcMethods;
  clientRate: ClientRate;
  presence: Presence;
  counters: DailyCounters;
  reporter: ServerStatsReporter;
}

/** Which routes this process serves, by role, and what each needs. */
export function routeHandlers(config: Config, rootLog: Logger, p: RouteParts): RouteHandlers {
  const { limits, gateway, publisher, parser, signer, requests, rpcMethods, backendRpc, clientRate, presence, counters, reporter } = p;
  const addresses = new ClientAddress(config.security.trustedProxies);
  return {
    maxPayloadBytes: limits.maxPayloadBytes,
    origins: new OriginPolicy(config.security.allowedOrigins),
    rest: { requests, rpc: rpcMethods, parser, rate: clientRate, addresses },
    stat: { reporter, counters },
    ...(gateway && {
      subscribe: {
        gateway,
        parser,
        maxChannelsPerConnection: config.gateway.maxChannelsPerConnection,
        clientAddress: addresses,
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
        signature: new PublishSignature(config.security.signedPublishing, signer),
        log: rootLog.child({ actor: 'publisher', component: 'http' }),
      },
      api: { methods: backendRpc, signer, log: rootLog.child({ actor: 'publisher', component: 'jsonrpc' }) },
    }),
  };
}
