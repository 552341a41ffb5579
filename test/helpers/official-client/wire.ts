import type { Transport } from './config.ts';
import type { FrameRecord } from './tap.ts';

/** What a binary frame decoder returns for each message of a frame. */
export interface DecodedWireMessage {
  mid: string;
  text: unknown;
  /** Whatever else the decoder reports for the message (e.g. sender, created). */
  meta?: Record<string, unknown>;
}

export interface WireMessage extends DecodedWireMessage {
  transport: Transport;
}

const TEXT_FRAME = /#!NGINXNMS!#(.*?)#!NGINXNME!#/g;

/**
 * The messages in the recorded frames (mid and body), duplicates included, in
 * arrival order. Text frames are parsed here; binary (v4 protobuf) frames only
 * through `decodeBinary`.
 */
export function wireMessages(frames: readonly FrameRecord[], decodeBinary?: (data: Buffer) => DecodedWireMessage[]): WireMessage[] {
  const out: WireMessage[] = [];
  for (const f of frames) {
    if (typeof f.data !== 'string') {
      if (decodeBinary) for (const m of decodeBinary(Buffer.from(f.data))) out.push({ ...m, transport: f.transport });
      continue;
    }
    for (const m of f.data.matchAll(TEXT_FRAME)) {
      try {
        const env = JSON.parse(m[1]!) as { mid?: unknown; text?: unknown };
        out.push({ mid: String(env.mid), text: env.text, transport: f.transport });
      } catch {
        out.push({ mid: '(unparsable frame)', text: m[1], transport: f.transport });
      }
    }
  }
  return out;
}
