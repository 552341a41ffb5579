/**
 * What one client saw, as plain data the checker reads: every message that reached
 * it (before and after its de-duplication), every connection or poll it made, and
 * when it was asleep on purpose.
 */

export type Transport = 'ws' | 'longpoll';
export type Format = 'text' | 'binary';

export interface DeliveryRec {
  /** Connection (WebSocket) or request (long poll) number within the client. */
  conn: number;
  gateway: string;
  mid: string;
  /** params.n of the body; undefined for a body that is not one of the suite's messages. */
  n: number | undefined;
  at: number;
  /** False when the client's last-10-mids de-duplication dropped it. */
  visible: boolean;
  /** Index of the frame / answer within the connection (0 = first). */
  frame: number;
}

export interface ConnRec {
  conn: number;
  gateway: string;
  /** The mid the connection or poll was opened with. */
  startMid: string | undefined;
  /** Request sent (long poll) or handshake started (WebSocket). */
  startedAt: number;
  /** WebSocket open, or long-poll answer received. */
  openedAt: number | undefined;
  endedAt: number | undefined;
  /** WebSocket close code, HTTP status, or the error's text. */
  end: string | undefined;
  messages: number;
}

export interface MidIssue {
  conn: number;
  gateway: string;
  at: number;
  /** The mid that should have been lower than `mid`. */
  previous: string;
  mid: string;
  kind: 'within-connection' | 'not-after-request-mid' | 'last-message-id-went-back';
}

export interface ClientRec {
  id: string;
  transport: Transport;
  format: Format;
  /** Channel ids (as a publish names them) this client listens to. */
  channels: string[];
  /** Gateways it may connect to. */
  gateways: string[];
  /** First visible delivery: messages sent from then on must all reach it. */
  subscribedAt: number | undefined;
  /** When it was stopped for good (not alive at the end); undefined while alive. */
  stoppedAt: number | undefined;
  deliveries: DeliveryRec[];
  conns: ConnRec[];
  midIssues: MidIssue[];
  sleeps: Array<{ from: number; to: number | undefined }>;
}

export function newClientRec(id: string, transport: Transport, format: Format, channels: string[], gateways: string[]): ClientRec {
  return { id, transport, format, channels, gateways, subscribedAt: undefined, stoppedAt: undefined, deliveries: [], conns: [], midIssues: [], sleeps: [] };
}

/** 26-digit mids compare as strings (fixed width); anything else sorts as lowest. */
export function midGreater(a: string, b: string | undefined | null): boolean {
  if (b === undefined || b === null || b === '') return true;
  return a.length === b.length ? a > b : a.length > b.length;
}
