import { createHash } from 'node:crypto';
import type { Signer } from '../wire/channel-id.ts';

/**
 * The demo's users and the pull client config a portal would hand them
 * (`pull.application.config.get`, official-client.md §2.1). Ids are derived from the
 * user number, so a restarted jetpull (or another process) issues the same channels
 * and a client's mid stays meaningful.
 */

export interface DemoUser {
  readonly userId: number;
  /** 32 hex: the channel the demo publishes to. */
  readonly privateId: string;
  /** What the client sends in CHANNEL_ID: `priv:pub.sig` with a key, the bare private id without. */
  readonly channelId: string;
  /** `pub.sig`, the user's address for client publishing; only with a key. */
  readonly publicAddress: string | undefined;
}

export const DEMO_VERSIONS = [3, 4] as const;
export type DemoVersion = (typeof DEMO_VERSIONS)[number];
export type DemoTransport = 'websocket' | 'longpolling';

/** Base URLs of the listener the browser subscribes on. */
export interface DemoEndpoints {
  /** `http(s)://host:port` */
  readonly httpBase: string;
  /** `ws(s)://host:port` */
  readonly wsBase: string;
  /** The listener's subscription route, e.g. /bitrix/subws/. */
  readonly subPath: string;
}

/** The client restarts when this changes (it compares it every 60 s); any stable number. */
const CONFIG_TIMESTAMP = 1_700_000_000;
/** How long the issued channels are valid; the client fetches a new config after. */
const CHANNEL_VALIDITY_MS = 12 * 3_600_000;

function demoId(kind: 'private' | 'public', userId: number): string {
  return createHash('sha256').update(`jetpull demo ${kind} ${userId}`).digest('hex').slice(0, 32);
}

export function demoUser(userId: number, signer: Signer): DemoUser {
  const privateId = demoId('private', userId);
  const publicId = demoId('public', userId);
  const signature = signer.sign(`${privateId}:${publicId}`);
  const publicSignature = signer.sign(`public:${publicId}`);
  return {
    userId,
    privateId,
    // Without a key a public id cannot be verified, so the client gets the bare private id.
    channelId: signature === undefined ? privateId : `${privateId}:${publicId}.${signature}`,
    publicAddress: publicSignature === undefined ? undefined : `${publicId}.${publicSignature}`,
  };
}

/** The config object the official client reads, plus `serverTime` as the REST method returns it. */
export function pullConfig(user: DemoUser, version: DemoVersion, transport: DemoTransport, ep: DemoEndpoints, now = Date.now()): Record<string, unknown> {
  const start = new Date(now - 60_000).toISOString();
  const end = new Date(now + CHANNEL_VALIDITY_MS).toISOString();
  const ws = `${ep.wsBase}${ep.subPath}`;
  const poll = `${ep.httpBase}${ep.subPath}`;
  return {
    server: {
      version,
      websocket_enabled: transport === 'websocket',
      // The client picks the *_secure URLs on an https page; both name the listener as it is.
      websocket: ws,
      websocket_secure: ws,
      long_polling: poll,
      long_pooling_secure: poll, // sic: the client reads "pooling"
      publish_enabled: false,
      config_timestamp: CONFIG_TIMESTAMP,
      mode: 'personal',
      server_enabled: true,
    },
    api: { revision_web: 19, revision_mobile: 3 },
    channels: {
      private: { id: user.channelId, ...(user.publicAddress && { public_id: user.publicAddress }), start, end, type: 'private' },
    },
    publicChannels: {},
    clientId: null,
    jwt: null,
    exp: 0,
    serverTime: new Date(now).toISOString(),
  };
}
