import type { Config } from '../config/schema.ts';
import type { Presence } from '../presence/presence.ts';
import { capExpiry, type PublishCommand, type Publisher } from '../publisher/publish-command.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import { userChannelId, type Receiver } from '../wire/channel-id.ts';
import { RpcErrorCode, RpcFailure } from '../wire/json-rpc.ts';
import { invalid, isObject, listOf, paramsOf, userIdsOf } from './rpc-params.ts';

const CHANNEL_ID = /^[0-9a-f]{32}$/;

export interface BackendRpcDeps {
  /** The portal's lane. */
  publisher: Publisher;
  presence: Presence;
  limits: Config['limits'];
  messageTtlSec: number;
  counters: DailyCounters;
}

/**
 * What a protocol 5 portal calls on `POST /bitrix/api/?hostId=…&signature=…`
 * (`Bitrix\Pull\JsonRpcTransport`): `publish` of its `DTO\Message` to user ids and
 * channel ids, `getUsersLastSeen`, `updateUsersLastSeen`. A user id is addressed as
 * the channel its token names on connect (userChannelId of the portal's host id).
 */
export class BackendRpcMethods {
  constructor(private readonly deps: BackendRpcDeps) {}

  async call(method: string, params: unknown, hostId: string): Promise<unknown> {
    switch (method) {
      case 'publish':
        await this.publish(params, hostId);
        return {};
      case 'getUsersLastSeen':
        return this.lastSeen(params, hostId);
      case 'updateUsersLastSeen':
        // The portal's own record of when users were last seen; presence here is what connections show.
        return {};
      case 'ping':
        return {};
      default:
        throw new RpcFailure(RpcErrorCode.MethodNotFound, `Method not found: ${method.slice(0, 64)}`);
    }
  }

  /**
   * One message to every user and channel listed. `user_params` (per user) and
   * `dictionary` go into `body.params` as the official client would merge them
   * (user_params first, then dictionary), so each user whose params differ gets a
   * copy of its own and the rest share one.
   */
  private async publish(params: unknown, hostId: string): Promise<void> {
    const p = paramsOf(params);
    const body = isObject(p.body) ? p.body : invalid('body must be an object');
    const { limits } = this.deps;
    const users = userIdsOf(p.userList, 'userList', limits.maxRpcReceivers);
    const channels = listOf(p.channelList, 'channelList').map((c) => (typeof c === 'string' && CHANNEL_ID.test(c) ? c : invalid('channelList holds channel ids')));
    const userParams = p.user_params === undefined ? {} : isObject(p.user_params) ? p.user_params : invalid('user_params must be an object');
    const dictionary = p.dictionary === undefined ? undefined : isObject(p.dictionary) ? p.dictionary : invalid('dictionary must be an object');
    const receivers = (ids: readonly string[]): Receiver[] => [...new Set(ids)].map((id) => ({ id, isPrivate: true }));
    if (users.length + channels.length === 0) invalid('no receivers: userList and channelList are empty');
    if (users.length + channels.length > limits.maxRpcReceivers) invalid(`more than ${limits.maxRpcReceivers} receivers (limits.maxRpcReceivers)`);
    const expirySec = capExpiry(p.expiry, this.deps.messageTtlSec);
    const type = typeof p.type === 'string' ? p.type : undefined;
    const merged = (extra: unknown): Buffer => {
      const own = isObject(extra) ? extra : undefined;
      if (own === undefined && dictionary === undefined) return Buffer.from(JSON.stringify(body), 'utf8');
      const bodyParams = isObject(body.params) ? body.params : {};
      return Buffer.from(JSON.stringify({ ...body, params: { ...bodyParams, ...own, ...dictionary } }), 'utf8');
    };
    const shared = [...channels, ...users.filter((u) => !isObject(userParams[u])).map((u) => userChannelId(hostId, u))];
    const commands: PublishCommand[] = [];
    if (shared.length > 0) commands.push({ receivers: receivers(shared), body: merged(undefined), expirySec, type, source: 'http_jsonrpc' });
    for (const u of users.filter((x) => isObject(userParams[x]))) {
      commands.push({ receivers: receivers([userChannelId(hostId, u)]), body: merged(userParams[u]), expirySec, type, source: 'http_jsonrpc' });
    }
    for (const cmd of commands) {
      if (cmd.body.length > limits.maxPayloadBytes) invalid(`body over ${limits.maxPayloadBytes} bytes`);
    }
    await Promise.all(
      commands.map(async (cmd) => {
        await this.deps.publisher.publish(cmd);
        this.deps.counters.countMessage(type);
      }),
    );
  }

  /** `{"<user id>": seconds since last seen}`, 0 for online; users not seen within the presence window are left out. */
  private async lastSeen(params: unknown, hostId: string): Promise<Record<string, number>> {
    return this.deps.presence.usersLastSeen(hostId, userIdsOf(paramsOf(params).userList, 'userList', this.deps.limits.maxRpcReceivers));
  }
}
