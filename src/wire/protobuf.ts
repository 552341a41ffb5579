import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { midToBytes } from './mid.ts';

/**
 * Binary mode codec (spec §3.4), driven by push.proto next to this file: the schema
 * is loaded once at start, never duplicated in code.
 */

const protoPath = (() => {
  const local = fileURLToPath(new URL('./push.proto', import.meta.url));
  if (existsSync(local)) return local;
  // Built layout: dist/src/wire/protobuf.js next to the copied schema, or the source tree.
  return fileURLToPath(new URL('../../../src/wire/push.proto', import.meta.url));
})();

const root = protobuf.loadSync(protoPath);
const RequestBatchType = root.lookupType('RequestBatch');
const ResponseBatchType = root.lookupType('ResponseBatch');

export const SenderType = { UNKNOWN: 0, CLIENT: 1, BACKEND: 2 } as const;

export interface ReceiverPb {
  id?: Uint8Array;
  isPrivate?: boolean;
  signature?: Uint8Array;
}
export interface IncomingMessagePb {
  receivers?: ReceiverPb[];
  sender?: { type?: number; id?: Uint8Array };
  body?: string;
  expiry?: number;
  type?: string;
}
export interface RequestPb {
  incomingMessages?: { messages?: IncomingMessagePb[] };
  channelStats?: { channels?: ReceiverPb[] };
  serverStats?: Record<string, never>;
  command?: 'incomingMessages' | 'channelStats' | 'serverStats';
}
export interface ChannelStatsPb {
  id: Uint8Array;
  isPrivate: boolean;
  isOnline: boolean;
}

/** Decodes a RequestBatch; throws on bytes that are not one. */
export function decodeRequestBatch(bytes: Uint8Array): RequestPb[] {
  const msg = RequestBatchType.decode(bytes);
  const obj = RequestBatchType.toObject(msg, { defaults: false, oneofs: true }) as { requests?: RequestPb[] };
  return obj.requests ?? [];
}

/** What binary mode needs of a message (the gateway's Delivery has this shape). */
export interface OutgoingSource {
  readonly mid: string;
  readonly msg: { readonly body: Uint8Array; readonly expirySec: number; readonly timeMs: number; readonly senderId: string | undefined };
}

function outgoing(d: OutgoingSource): Record<string, unknown> {
  const m = d.msg;
  return {
    id: midToBytes(d.mid),
    body: Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString('utf8'),
    expiry: m.expirySec,
    // Always unix seconds: the reference sometimes leaks milliseconds here (spec §3.4).
    created: Math.floor(m.timeMs / 1000),
    // The official client drops a whole batch whose message has no sender.
    sender:
      m.senderId === undefined
        ? { type: SenderType.BACKEND }
        : { type: SenderType.CLIENT, id: Buffer.from(m.senderId, 'hex') },
  };
}

/**
 * One `Response{outgoingMessages}` holding the given messages, encoded as a whole
 * ResponseBatch. Protobuf repeated fields concatenate, so several of these back to
 * back are one ResponseBatch with several Responses.
 */
export function encodeResponseEntry(list: readonly OutgoingSource[]): Buffer {
  const bytes = ResponseBatchType.encode({ responses: [{ outgoingMessages: { messages: list.map(outgoing) } }] }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeChannelStats(channels: readonly ChannelStatsPb[]): Buffer {
  const bytes = ResponseBatchType.encode({ responses: [{ channelStats: { channels } }] }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeServerStats(json: string): Buffer {
  const bytes = ResponseBatchType.encode({ responses: [{ serverStats: { json } }] }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
