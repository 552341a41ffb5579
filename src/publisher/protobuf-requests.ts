import type { Config } from '../config/schema.ts';
import { toClientError, type AppError } from '../errors/app-error.ts';
import type { Logger } from '../log/logger.ts';
import { channelKey } from '../nats/subjects.ts';
import type { Presence } from '../presence/presence.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import type { ServerStat } from '../stats/server-stats.ts';
import type { Receiver, Signer } from '../wire/channel-id.ts';
import { PushError, type PushErrorCode } from '../wire/error-codes.ts';
import {
  decodeRequestBatch,
  encodeChannelStats,
  encodeServerStats,
  type IncomingMessagePb,
  type ReceiverPb,
  type RequestPb,
} from '../wire/protobuf.ts';
import { capExpiry, type PublishCommand } from './publish-command.ts';
import type { PublisherActor } from './publisher-actor.ts';

/**
 * Who sent a protobuf RequestBatch (spec §2.5). The backend's /bitrix/pub/ is
 * trusted: any receiver with a 16-byte id, any command. A client (binary WebSocket,
 * /bitrix/rest/) is not: it needs a public id of its own, may only publish to and
 * ask about public ids carrying HMAC("public:"+id), and its messages are sent as
 * CLIENT with its public id whatever it claims.
 */
export type RequestOrigin = { trusted: true } | { trusted: false; publicId: string | undefined };

export type RequestOutcome =
  | { ok: true; reply: Buffer | undefined }
  | { ok: false; code: PushErrorCode }
  | { ok: false; error: AppError };

export interface ProtobufRequestDeps {
  publisher: PublisherActor;
  presence: Presence;
  signer: Signer;
  limits: Config['limits'];
  messageTtlSec: number;
  counters: DailyCounters;
  serverStats: () => Promise<ServerStat[]>;
  log: Logger;
}

class RequestRefused extends Error {
  constructor(readonly code: PushErrorCode) {
    super(`request refused with ${code}`);
    this.name = 'RequestRefused';
  }
}

export class ProtobufRequests {
  constructor(private readonly deps: ProtobufRequestDeps) {}

  /** Like Push server 2.0, only the first Request of a batch is processed. */
  async handle(bytes: Uint8Array, origin: RequestOrigin): Promise<RequestOutcome> {
    try {
      if (!origin.trusted && origin.publicId === undefined) throw new RequestRefused(PushError.PublicChannelRequired);
      const request = firstRequest(bytes);
      switch (request.command) {
        case 'incomingMessages':
          this.deps.counters.countRequest('incomingMessages');
          await this.publish(request.incomingMessages?.messages ?? [], origin);
          return { ok: true, reply: undefined };
        case 'channelStats':
          this.deps.counters.countRequest('channelStats');
          return { ok: true, reply: await this.channelStats(request.channelStats?.channels ?? [], origin) };
        case 'serverStats':
          if (!origin.trusted) throw new RequestRefused(PushError.CommandNotAllowed);
          this.deps.counters.countRequest('serverStats');
          return { ok: true, reply: encodeServerStats(JSON.stringify(await this.deps.serverStats())) };
        default:
          throw new RequestRefused(PushError.WrongRequestData);
      }
    } catch (err) {
      if (err instanceof RequestRefused) return { ok: false, code: err.code };
      return { ok: false, error: toClientError(err) };
    }
  }

  private async publish(messages: readonly IncomingMessagePb[], origin: RequestOrigin): Promise<void> {
    const { limits } = this.deps;
    if (messages.length > limits.maxMessagesPerRequest) throw new RequestRefused(PushError.TooManyMessages);
    // Everything is validated before anything is published.
    const commands: PublishCommand[] = messages.map((m) => ({
      receivers: this.receivers(m.receivers ?? [], origin),
      body: Buffer.from(m.body ?? '', 'utf8'),
      expirySec: capExpiry(m.expiry ?? 0, this.deps.messageTtlSec),
      senderId: origin.trusted ? undefined : origin.publicId,
      type: m.type,
      source: origin.trusted ? 'http_protobuf' : 'client',
    }));
    await Promise.all(
      commands.map(async (cmd) => {
        await this.deps.publisher.publish(cmd);
        this.deps.counters.countMessage(cmd.type);
      }),
    );
  }

  private async channelStats(channels: readonly ReceiverPb[], origin: RequestOrigin): Promise<Buffer> {
    const receivers = this.receivers(channels, origin, false);
    const online = await this.deps.presence.online(receivers.map(channelKey));
    return encodeChannelStats(
      receivers.map((r, i) => ({ id: Buffer.from(r.id, 'hex'), isPrivate: r.isPrivate, isOnline: online[i]! })),
    );
  }

  /** Validates receivers in the reference's order: count (4017, 4018), then each id (4019, 4020, 4021). */
  private receivers(list: readonly ReceiverPb[], origin: RequestOrigin, unique = true): Receiver[] {
    if (list.length === 0) throw new RequestRefused(PushError.NoChannels);
    if (list.length > this.deps.limits.maxChannelsPerRequest) throw new RequestRefused(PushError.TooManyChannels);
    const out: Receiver[] = [];
    const seen = new Set<string>();
    for (const r of list) {
      const id = r.id;
      if (id === undefined || id.length !== 16) throw new RequestRefused(PushError.InvalidChannelId);
      const hex = Buffer.from(id).toString('hex');
      const isPrivate = r.isPrivate === true;
      if (!origin.trusted) {
        if (isPrivate) throw new RequestRefused(PushError.PrivateChannelNotAllowed);
        if (r.signature === undefined || !this.deps.signer.verifyRaw(`public:${hex}`, r.signature)) {
          throw new RequestRefused(PushError.InvalidSignature);
        }
      }
      const key = (isPrivate ? 'p' : 'u') + hex;
      if (unique && seen.has(key)) continue;
      seen.add(key);
      out.push({ id: hex, isPrivate });
    }
    return out;
  }
}

function firstRequest(bytes: Uint8Array): RequestPb {
  let requests: RequestPb[];
  try {
    requests = decodeRequestBatch(bytes);
  } catch {
    throw new RequestRefused(PushError.WrongRequestData);
  }
  const first = requests[0];
  if (first === undefined || first.command === undefined) throw new RequestRefused(PushError.WrongRequestData);
  return first;
}
