import protobuf from 'protobufjs';

/** Encodes requests and decodes responses with the repository's push.proto, as a client would. */
const root = protobuf.loadSync(new URL('../../src/wire/push.proto', import.meta.url).pathname);
const RequestBatch = root.lookupType('RequestBatch');
const ResponseBatch = root.lookupType('ResponseBatch');

export interface ReceiverIn {
  id: Buffer;
  isPrivate?: boolean;
  signature?: Buffer;
}

export function requestBatch(request: Record<string, unknown>): Buffer {
  return Buffer.from(RequestBatch.encode(RequestBatch.fromObject({ requests: [request] })).finish());
}

export function incomingMessages(messages: Array<{ receivers: ReceiverIn[]; body: string; expiry?: number; type?: string }>): Buffer {
  return requestBatch({ incomingMessages: { messages } });
}

export function channelStatsRequest(channels: ReceiverIn[]): Buffer {
  return requestBatch({ channelStats: { channels } });
}

export interface OutgoingOut {
  mid: string;
  body: string;
  expiry: number;
  created: number;
  sender: { type: number; id: string };
}

export interface DecodedResponse {
  outgoingMessages?: OutgoingOut[];
  channelStats?: Array<{ id: string; isPrivate: boolean; isOnline: boolean }>;
  serverStats?: string;
}

/** A ResponseBatch as plain data: ids and sender ids as hex. */
export function decodeResponseBatch(bytes: Uint8Array): DecodedResponse[] {
  const obj = ResponseBatch.toObject(ResponseBatch.decode(bytes), { defaults: true, oneofs: true, longs: Number }) as {
    responses: Array<Record<string, any>>;
  };
  return obj.responses.map((r) => {
    if (r.command === 'outgoingMessages') {
      return {
        outgoingMessages: (r.outgoingMessages.messages as Array<Record<string, any>>).map((m) => ({
          mid: Buffer.from(m.id).toString('hex'),
          body: m.body,
          expiry: m.expiry,
          created: m.created,
          sender: { type: m.sender?.type ?? -1, id: Buffer.from(m.sender?.id ?? []).toString('hex') },
        })),
      };
    }
    if (r.command === 'channelStats') {
      return {
        channelStats: (r.channelStats.channels as Array<Record<string, any>>).map((c) => ({
          id: Buffer.from(c.id).toString('hex'),
          isPrivate: c.isPrivate,
          isOnline: c.isOnline,
        })),
      };
    }
    return { serverStats: r.serverStats.json as string };
  });
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');
