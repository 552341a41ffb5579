import type { Config } from '../config/schema.ts';
import { ProtocolError } from '../errors/app-error.ts';
import { CloseCode } from '../errors/close-codes.ts';
import type { Presence } from '../presence/presence.ts';
import { checkClientBody, checkClientCopies, clientExpiryCap } from './client-message-rules.ts';
import { capExpiry, type PublishCommand, type Publisher } from '../publisher/publish-command.ts';
import type { DailyCounters } from '../stats/daily-counters.ts';
import type { ServerStat } from '../stats/server-stats.ts';
import { channelKey, type Receiver, type Signer } from '../wire/channel-id.ts';
import {
  decodeRequestBatch,
  encodeChannelStats,
  encodeServerStats,
  type IncomingMessagePb,
  type ReceiverPb,
  type RequestPb,
} from '../wire/protobuf.ts';

/**
 * Who sent a protobuf RequestBatch (spec §2.5). The backend's /bitrix/pub/ is
 * trusted: any receiver with a 16-byte id, any command. A client (binary WebSocket,
 * /bitrix/rest/) is not: it needs a public id of its own, may only publish to and
 * ask about public ids carrying HMAC("public:"+id), and its messages are sent as
 * CLIENT with its public id whatever it claims.
 */
export type RequestOrigin = { trusted: true } | { trusted: false; publicId: string | undefined };

export interface ProtobufRequestDeps {
  /** The portal's lane, for trusted requests. */
  publisher: Publisher;
  /** The client lane, for everything a client sends. */
  clientPublisher: Publisher;
  presence: Presence;
  signer: Signer;
  limits: Config['limits'];
  messageTtlSec: number;
  counters: DailyCounters;
  serverStats: () => Promise<ServerStat[]>;
}

/**
 * Turns a protobuf RequestBatch into publish commands or answers. Resolves with the
 * reply (a ResponseBatch) or undefined when there is nothing to answer (a publish);
 * rejects with a ProtocolError for the protocol's refusals (4012–4021) and with the
 * publisher's AppError when storage fails.
 */
export class ProtobufRequests {
  constructor(private readonly deps: ProtobufRequestDeps) {}

  /** Like Push server 2.0, only the first Request of a batch is processed. */
  async handle(bytes: Uint8Array, origin: RequestOrigin): Promise<Buffer | undefined> {
    if (!origin.trusted && origin.publicId === undefined) throw new ProtocolError(CloseCode.PublicChannelRequired);
    const request = firstRequest(bytes);
    switch (request.command) {
      case 'incomingMessages':
        this.deps.counters.countRequest('incomingMessages');
        await this.publish(request.incomingMessages?.messages ?? [], origin);
        return undefined;
      case 'channelStats':
        this.deps.counters.countRequest('channelStats');
        return this.channelStats(request.channelStats?.channels ?? [], origin);
      case 'serverStats':
        if (!origin.trusted) throw new ProtocolError(CloseCode.CommandNotAllowed);
        this.deps.counters.countRequest('serverStats');
        return encodeServerStats(JSON.stringify(await this.deps.serverStats()));
      default:
        throw new ProtocolError(CloseCode.WrongRequestData);
    }
  }

  /**
   * Publishes messages as IncomingMessages requests do (limits, signatures, lanes), for
   * callers that carry them in another framing (protocol 5's `publish` method).
   */
  async publish(messages: readonly IncomingMessagePb[], origin: RequestOrigin): Promise<void> {
    if (!origin.trusted && origin.publicId === undefined) throw new ProtocolError(CloseCode.PublicChannelRequired);
    const { limits } = this.deps;
    if (messages.length > limits.maxMessagesPerRequest) throw new ProtocolError(CloseCode.TooManyMessages);
    if (!origin.trusted) checkClientCopies(messages, limits);
    const maxExpirySec = origin.trusted ? this.deps.messageTtlSec : clientExpiryCap(limits, this.deps.messageTtlSec);
    // Everything is validated before anything is published.
    const commands: PublishCommand[] = messages.map((m) => ({
      receivers: this.receivers(m.receivers ?? [], origin),
      body: this.body(m.body ?? '', origin),
      expirySec: capExpiry(m.expiry ?? 0, maxExpirySec),
      senderId: origin.trusted ? undefined : origin.publicId,
      type: m.type,
      source: origin.trusted ? 'http_protobuf' : 'client',
    }));
    const lane = origin.trusted ? this.deps.publisher : this.deps.clientPublisher;
    await Promise.all(
      commands.map(async (cmd) => {
        await lane.publish(cmd);
        this.deps.counters.countMessage(cmd.type);
      }),
    );
  }

  /** The backend's bodies go as they are; a client's must be an event as the official client sends it. */
  private body(text: string, origin: RequestOrigin): Buffer {
    if (!origin.trusted) checkClientBody(text, this.deps.limits);
    return Buffer.from(text, 'utf8');
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
    if (list.length === 0) throw new ProtocolError(CloseCode.NoChannels);
    if (list.length > this.deps.limits.maxChannelsPerRequest) throw new ProtocolError(CloseCode.TooManyChannels);
    const out: Receiver[] = [];
    const seen = new Set<string>();
    for (const r of list) {
      const id = r.id;
      if (id === undefined || id.length !== 16) throw new ProtocolError(CloseCode.InvalidChannelId);
      const receiver: Receiver = { id: Buffer.from(id).toString('hex'), isPrivate: r.isPrivate === true };
      if (!origin.trusted) {
        if (receiver.isPrivate) throw new ProtocolError(CloseCode.PrivateChannelNotAllowed);
        if (r.signature === undefined || !this.deps.signer.verifyRaw(`public:${receiver.id}`, r.signature)) {
          throw new ProtocolError(CloseCode.InvalidSignature);
        }
      }
      const key = channelKey(receiver);
      if (unique && seen.has(key)) continue;
      seen.add(key);
      out.push(receiver);
    }
    return out;
  }
}

function firstRequest(bytes: Uint8Array): RequestPb {
  let requests: RequestPb[];
  try {
    requests = decodeRequestBatch(bytes);
  } catch {
    throw new ProtocolError(CloseCode.WrongRequestData);
  }
  const first = requests[0];
  if (first === undefined || first.command === undefined) throw new ProtocolError(CloseCode.WrongRequestData);
  return first;
}
