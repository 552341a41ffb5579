import { decodeResponseBatch } from '../../helpers/protobuf.ts';
import { parseTextFrames } from '../../helpers/text-frames.ts';
import { midGreater, type ClientRec } from './delivery-record.ts';
import { bodyNumber } from './stream-admin.ts';

/**
 * The part of the official client (b24jssdk 2.2.0 `handleIncomingEvents`) that
 * decides what reaches the application and which mid it resumes from: every event
 * sets `session.mid` (also a duplicate), an event whose mid is among the remembered
 * ones is dropped, the list is trimmed to the last 10 after each batch, and an empty
 * batch forgets the mid.
 */

const MAX_IDS_TO_STORE = 10;

export interface IncomingEvent {
  mid: string;
  tag?: string;
  time?: string;
  body: string;
}

export class OfficialSession {
  mid: string | null = null;
  tag: string | null = null;
  time: string | null = null;
  private lastMessageIds: string[] = [];

  /** Hands a batch to the session; returns, per event, whether the application saw it. */
  handleIncomingEvents(events: readonly IncomingEvent[]): boolean[] {
    if (events.length === 0) {
      this.mid = null;
      return [];
    }
    const visible = events.map((e) => {
      this.mid = e.mid || null;
      this.tag = e.tag ?? null;
      this.time = e.time ?? null;
      if (e.mid && this.lastMessageIds.includes(e.mid)) return false;
      this.lastMessageIds.push(e.mid);
      return true;
    });
    if (this.lastMessageIds.length > MAX_IDS_TO_STORE) this.lastMessageIds = this.lastMessageIds.slice(-MAX_IDS_TO_STORE);
    return visible;
  }

  /** The query parameters the official client adds on a (re)connect: mid, and tag/time in text mode. */
  resumeParams(textMode: boolean): string {
    let q = '';
    if (this.mid) q += `&mid=${this.mid}`;
    if (textMode && this.tag) q += `&tag=${encodeURIComponent(this.tag)}`;
    if (textMode && this.time) q += `&time=${encodeURIComponent(this.time)}`;
    return q;
  }
}

/** Events of one WebSocket message or long-poll body, as the client parses them. */
export function parseEvents(data: Buffer, binary: boolean): IncomingEvent[] {
  if (binary) {
    const out: IncomingEvent[] = [];
    for (const r of decodeResponseBatch(data)) for (const m of r.outgoingMessages ?? []) out.push({ mid: m.mid, body: m.body });
    return out;
  }
  return parseTextFrames(data.toString('utf8')).map((f) => ({ mid: f.mid, tag: f.tag, time: f.time, body: JSON.stringify(f.text) }));
}

/**
 * Records one batch the client received on connection `conn`: every event (with
 * whether de-duplication let it through), and mids that did not increase, within
 * the connection (`lastMid` is the previous mid on it, or the mid it was opened
 * with). Returns the last mid seen.
 */
export function recordBatch(
  rec: ClientRec,
  session: OfficialSession,
  events: readonly IncomingEvent[],
  ctx: { conn: number; gateway: string; frame: number; lastMid: string | undefined; startMid: string | undefined; at: number },
): string | undefined {
  const visible = session.handleIncomingEvents(events);
  let last = ctx.lastMid;
  events.forEach((e, i) => {
    if (last !== undefined && !midGreater(e.mid, last)) {
      rec.midIssues.push({
        conn: ctx.conn,
        gateway: ctx.gateway,
        at: ctx.at,
        previous: last,
        mid: e.mid,
        kind: last === ctx.startMid && ctx.frame === 0 && i === 0 ? 'not-after-request-mid' : 'within-connection',
      });
    }
    last = e.mid;
    rec.deliveries.push({ conn: ctx.conn, gateway: ctx.gateway, mid: e.mid, n: bodyNumber(e.body), at: ctx.at, visible: visible[i]!, frame: ctx.frame });
    if (visible[i] && rec.subscribedAt === undefined) rec.subscribedAt = ctx.at;
  });
  return last;
}
