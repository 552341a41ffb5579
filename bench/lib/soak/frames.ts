import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * What the soak's clients read and write. Unlike the throughput scenarios it decodes
 * every message fully (JSON for text frames, protobufjs for binary ones): its rates are
 * modest and it checks mids and bodies, not just counts.
 */

const root = protobuf.loadSync(fileURLToPath(new URL('../../../src/wire/push.proto', import.meta.url)));
const RequestBatch = root.lookupType('RequestBatch');
const ResponseBatch = root.lookupType('ResponseBatch');

/** One delivered message: its 26-digit mid and the published event. */
export interface Received {
  mid: string;
  event: { module_id?: string; command?: string; params?: Record<string, unknown> } | undefined;
}

const START = '#!NGINXNMS!#';
const END = '#!NGINXNME!#';

/** Every `#!NGINXNMS!#…#!NGINXNME!#` block of a text frame or long-poll body. */
export function textMessages(buf: Buffer): Received[] {
  const s = buf.toString('utf8');
  const out: Received[] = [];
  for (let i = s.indexOf(START); i !== -1; ) {
    const j = s.indexOf(END, i + START.length);
    if (j === -1) throw new Error('text frame: unterminated message');
    const o = JSON.parse(s.slice(i + START.length, j)) as { mid: string; text: unknown };
    out.push({ mid: o.mid, event: typeof o.text === 'object' && o.text !== null ? (o.text as Received['event']) : undefined });
    i = s.indexOf(START, j + END.length);
  }
  return out;
}

export interface BinaryFrame {
  messages: Received[];
  /** channelStats responses in the frame (replies to a client's requests). */
  channelStats: number;
}

/** A ResponseBatch: its outgoing messages (mid = hex of the 13-byte id) and how many channelStats answers. */
export function binaryFrame(buf: Buffer): BinaryFrame {
  const batch = ResponseBatch.toObject(ResponseBatch.decode(buf), { oneofs: true }) as {
    responses?: Array<{ command?: string; outgoingMessages?: { messages?: Array<{ id?: Uint8Array; body?: string }> } }>;
  };
  const messages: Received[] = [];
  let channelStats = 0;
  for (const r of batch.responses ?? []) {
    if (r.command === 'channelStats') channelStats++;
    for (const m of r.outgoingMessages?.messages ?? []) {
      let event: Received['event'];
      try {
        event = JSON.parse(m.body ?? '') as Received['event'];
      } catch {
        event = undefined;
      }
      messages.push({ mid: Buffer.from(m.id ?? []).toString('hex'), event });
    }
  }
  return { messages, channelStats };
}

export function signRaw(key: string, message: string): Buffer {
  return createHmac('sha1', key).update(message).digest();
}

/** A public receiver as a client must name it: the id and HMAC("public:"+id) as raw bytes. */
function publicReceiver(key: string, pub: string): { id: Buffer; isPrivate: boolean; signature: Buffer } {
  return { id: Buffer.from(pub, 'hex'), isPrivate: false, signature: signRaw(key, `public:${pub}`) };
}

/** A client's RequestBatch publishing `bodies` (one message each) to every public id in `to`. */
export function clientPublish(key: string, to: readonly string[], bodies: readonly string[], expirySec: number): Buffer {
  const receivers = to.map((p) => publicReceiver(key, p));
  const messages = bodies.map((body) => ({ receivers, body, expiry: expirySec, type: 'soak_f' }));
  return Buffer.from(RequestBatch.encode(RequestBatch.fromObject({ requests: [{ incomingMessages: { messages } }] })).finish());
}

/** A client's channelStats request for public ids. */
export function clientChannelStats(key: string, of: readonly string[]): Buffer {
  const channels = of.map((p) => publicReceiver(key, p));
  return Buffer.from(RequestBatch.encode(RequestBatch.fromObject({ requests: [{ channelStats: { channels } }] })).finish());
}
