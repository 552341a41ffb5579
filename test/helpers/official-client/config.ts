import type { TypePullClientConfig } from '@bitrix24/b24jssdk';
import type { TestUser } from '../channels.ts';

export type Transport = 'websocket' | 'longpolling';

export interface PullConfigOptions {
  /** http://127.0.0.1:<port> of the jetpull listener. */
  base: string;
  /** ws://127.0.0.1:<port> of the jetpull listener. */
  wsBase: string;
  user: TestUser;
  /** The shared channel; left out of CHANNEL_ID when absent. */
  shared?: { id: string; token: string };
  /** `server.version`: ≤ 3 text mode, 4 protobuf (`binaryMode=true`), ≥ 5 JSON-RPC. Default 3. */
  version?: number;
  /** `longpolling` sets `websocket_enabled: false`, which is how the client is made to poll. Default `websocket`. */
  transport?: Transport;
  /** `server.publish_enabled` (client publishing, v4 only). Default false. */
  publishEnabled?: boolean;
  /** The private channel id handed to the client. Default `user.token` (`priv:pub.sig`). */
  privateChannelId?: string;
}

/** The client's long-poll route `/bitrix/sub/` is `/bitrix/subws/` behind nginx. */
const SUB_PATH = '/bitrix/subws/';
/** What clients publish to: the client-safe endpoint, not the backend's `/bitrix/pub/`. */
const PUBLISH_PATH = '/bitrix/rest/';
/** Must be present and stable: the client compares it every 60 s and restarts on a change. */
const CONFIG_TIMESTAMP = 1_700_000_000;

/** The config as `pull.application.config.get` returns it (official-client.md §2.1), without `serverTime`. */
export function buildPullConfig(opts: PullConfigOptions): TypePullClientConfig {
  const { start, end } = validity();
  const secure = (u: string): string => u.replace(/^http:/, 'https:').replace(/^ws:/, 'wss:');
  const channels: Record<string, unknown> = {
    private: { id: opts.privateChannelId ?? opts.user.token, public_id: opts.user.publicAddress, start, end, type: 'private' },
  };
  if (opts.shared) channels.shared = { id: opts.shared.token, start, end, type: 'shared' };
  const config = {
    server: {
      version: opts.version ?? 3,
      websocket_enabled: (opts.transport ?? 'websocket') === 'websocket',
      websocket: `${opts.wsBase}${SUB_PATH}`,
      websocket_secure: secure(`${opts.wsBase}${SUB_PATH}`),
      long_polling: `${opts.base}${SUB_PATH}`,
      long_pooling_secure: secure(`${opts.base}${SUB_PATH}`), // sic: the client reads "pooling"
      publish_enabled: opts.publishEnabled ?? false,
      publish: `${opts.base}${PUBLISH_PATH}`,
      publish_secure: secure(`${opts.base}${PUBLISH_PATH}`),
      config_timestamp: CONFIG_TIMESTAMP,
      mode: 'personal',
      server_enabled: true,
    },
    api: { revision_web: 19, revision_mobile: 3 },
    channels,
    publicChannels: {},
    clientId: null,
    jwt: null,
    exp: 0,
  };
  // The SDK's config type is narrower than what the server sends (e.g. no `type` on
  // channels, `timeShift` filled in by the client itself).
  return config as unknown as TypePullClientConfig;
}

/**
 * `pull.channel.public.list` as the portal answers it, for the asked user ids it
 * knows: `{<uid>: {user_id, public_id, signature, start, end}}`.
 */
export function publicChannelList(users: Record<number, TestUser>, asked: readonly unknown[]): Record<string, unknown> {
  const { start, end } = validity();
  const out: Record<string, unknown> = {};
  for (const raw of asked) {
    const uid = Number(raw);
    const u = users[uid];
    if (!u) continue;
    const [publicId, signature] = u.publicAddress.split('.');
    out[String(uid)] = { user_id: uid, public_id: publicId, signature, start, end };
  }
  return out;
}

/** Valid since a minute ago, for 12 hours: the client restarts when a channel's `end` has passed. */
function validity(): { start: string; end: string } {
  const now = Date.now();
  return { start: new Date(now - 60_000).toISOString(), end: new Date(now + 12 * 3_600_000).toISOString() };
}
