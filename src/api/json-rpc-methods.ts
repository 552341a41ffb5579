import type { RpcCaller, RpcMethods } from '../gateway/client-requests.ts';
import type { Presence } from '../presence/presence.ts';
import type { StatusWatch } from '../presence/status-watch.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import { RpcErrorCode, RpcFailure } from '../wire/json-rpc.ts';
import { invalid, isObject, paramsOf, userIdOf, userIdsOf } from './rpc-params.ts';
import type { IncomingMessagePb, ReceiverPb } from '../wire/protobuf.ts';
import type { ProtobufRequests } from './protobuf-requests.ts';

const HEX32 = /^[0-9a-f]{32}$/;
const HEX_SIGNATURE = /^[0-9a-f]{32,128}$/;

export interface JsonRpcMethodDeps {
  /** Client publishing: the same limits, signature checks and lane as a binary-mode client's. */
  requests: ProtobufRequests;
  presence: Presence;
  counters: DailyCounters;
  /** At most this many user ids per call, and watched per connection (limits.maxChannelsPerRequest). */
  maxUsersPerCall: number;
  statusWatch?: StatusWatch;
}

/**
 * The methods a protocol 5 client calls (official-client.md §5.4). This server knows
 * channels; a token names its user and portal, so users are known as channels
 * (userChannelId): `getUsersLastSeen` answers from presence for a token's connection.
 * `subscribeStatusChange` has a token's connection told of a user's changes. A client's
 * `publish` to a `userList` is refused with an error the client hands to its caller.
 */
export class JsonRpcMethods implements RpcMethods {
  constructor(private readonly deps: JsonRpcMethodDeps) {}

  /**
   * A token's connection asks about users of its own portal, from presence; one without
   * a token has no portal to name users in, so it knows nobody, and the official client
   * asks the portal (`pull.api.user.getLastSeen`) for every user left out.
   */
  private async lastSeen(params: unknown, caller: RpcCaller): Promise<Record<string, number>> {
    const users = userIdsOf(paramsOf(params).userList, 'userList', this.deps.maxUsersPerCall);
    return caller.hostId === undefined ? {} : this.deps.presence.usersLastSeen(caller.hostId, users);
  }

  /**
   * A token's connection is told of the user's changes (presence/status-watch.ts). One
   * without a token names no portal for user ids: accepted, as the client re-sends it on
   * every connect, and never told.
   */
  private subscribeStatus(params: unknown, caller: RpcCaller): Record<string, never> {
    const userId = statusUserId(params);
    const watch = this.deps.statusWatch;
    if (watch === undefined || caller.hostId === undefined || caller.userId === undefined || caller.connection === undefined) return {};
    if (!watch.watch(caller.connection, { hostId: caller.hostId, userId: caller.userId }, userId)) invalid(`more than ${this.deps.maxUsersPerCall} users watched on one connection`);
    return {};
  }

  async call(method: string, params: unknown, caller: RpcCaller): Promise<unknown> {
    switch (method) {
      case 'ping':
        return {};
      case 'listChannels':
        return { channels: caller.keys.map((key) => ({ id: key.slice(key.indexOf('.') + 1), isPrivate: key.startsWith('priv.') })) };
      case 'publish':
        this.deps.counters.countRequest('incomingMessages');
        await this.deps.requests.publish([incomingMessage(params)], { trusted: false, publicId: caller.publicId });
        return {};
      case 'getUsersLastSeen':
        return this.lastSeen(params, caller);
      case 'subscribeStatusChange':
        return this.subscribeStatus(params, caller);
      case 'unsubscribeStatusChange': {
        const userId = statusUserId(params);
        if (caller.hostId !== undefined && caller.connection !== undefined) this.deps.statusWatch?.unwatch(caller.connection, caller.hostId, userId);
        return {};
      }
      default:
        throw new RpcFailure(RpcErrorCode.MethodNotFound, `Method not found: ${method.slice(0, 64)}`);
    }
  }
}

/** `publish`'s params as the IncomingMessage a binary-mode client would have sent. */
function incomingMessage(params: unknown): IncomingMessagePb {
  const p = paramsOf(params);
  if (p.userList !== undefined) throw new RpcFailure(RpcErrorCode.InvalidParams, 'userList: this server addresses channels, not users; use channelList');
  if (!Array.isArray(p.channelList)) invalid('channelList must be an array');
  const body = isObject(p.body) ? JSON.stringify(p.body) : invalid('body must be an object');
  const expiry = p.expiry === undefined ? 0 : typeof p.expiry === 'number' && Number.isInteger(p.expiry) && p.expiry >= 0 ? p.expiry : invalid('expiry must be whole seconds');
  return { receivers: (p.channelList as unknown[]).map(receiver), body, expiry };
}

/** `"<public id>.<signature>"` or `{publicId, signature}`: a public channel with HMAC("public:"+id). */
function receiver(entry: unknown): ReceiverPb {
  let id: unknown;
  let signature: unknown;
  if (typeof entry === 'string') [id, signature] = entry.split('.', 2);
  else if (isObject(entry)) ({ publicId: id, signature } = entry);
  if (typeof id !== 'string' || !HEX32.test(id) || typeof signature !== 'string' || !HEX_SIGNATURE.test(signature)) {
    invalid('channelList entries are "<public id>.<signature>" or {publicId, signature}');
  }
  return { id: Buffer.from(id, 'hex'), isPrivate: false, signature: Buffer.from(signature, 'hex') };
}

/** `{"userId": 42}`, or `"42"` as the client re-sends it after a reconnect. */
function statusUserId(params: unknown): string {
  return userIdOf(paramsOf(params).userId, 'userId');
}
