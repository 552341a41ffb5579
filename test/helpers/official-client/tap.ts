import type { IncomingHttpHeaders } from 'node:http';
import type { Transport } from './config.ts';

export interface ConnectionRecord {
  transport: Transport;
  /** The URL exactly as the client built it. */
  url: string;
}

export interface FrameRecord {
  transport: Transport;
  /** A WebSocket message, or the body of a long-poll 200. */
  data: string | Buffer;
  binary: boolean;
}

export interface PollAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A client publish over long polling: `POST <server.publish>?CHANNEL_ID=…` and its answer. */
export interface PublishRecord {
  url: string;
  method: string;
  body: Buffer;
  /** Set once answered; 0 on a network or CORS failure. */
  status?: number;
  response?: Buffer;
}

export interface CloseRecord {
  code: number;
  reason: string;
}

/** A WebSocket the tap can cut from under the client. */
export interface LiveSocket {
  readonly isOpen: boolean;
  terminate(): void;
}

/** An XMLHttpRequest the tap can cut from under the client. */
export interface LiveRequest {
  readonly inFlight: boolean;
  failNetwork(): void;
  abort(): void;
}

/**
 * What went over the wire for one client, as the shims saw it, and a switch that
 * holds its new connections back so that messages can be published while it is
 * really offline.
 */
export class Tap {
  /** Every WebSocket opened and every long poll sent, in order. */
  readonly connections: ConnectionRecord[] = [];
  readonly frames: FrameRecord[] = [];
  readonly sentFrames: FrameRecord[] = [];
  readonly pollAnswers: PollAnswer[] = [];
  readonly publishes: PublishRecord[] = [];
  readonly closes: CloseRecord[] = [];
  /** Exceptions thrown by the client in its socket and XHR event handlers. */
  readonly handlerErrors: unknown[] = [];
  /** WebSockets not closed yet. */
  readonly sockets = new Set<LiveSocket>();
  readonly requests = new Set<LiveRequest>();
  private hold: { released: Promise<void>; release: () => void } | null = null;

  constructor(readonly match: string) {}

  /** Resolves when held connections may go ahead; null while nothing is held. */
  whenReleased(): Promise<void> | null {
    return this.hold?.released ?? null;
  }

  holdConnections(): void {
    if (this.hold) return;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.hold = { released, release };
  }

  releaseConnections(): void {
    const h = this.hold;
    this.hold = null;
    h?.release();
  }

  /** Cuts the open WebSockets or the polls in flight as a network failure would; returns how many. */
  cut(transport: Transport): number {
    let cut = 0;
    if (transport === 'websocket') {
      for (const s of this.sockets) {
        if (s.isOpen) {
          s.terminate();
          cut++;
        }
      }
    } else {
      for (const r of this.requests) {
        if (r.inFlight) {
          r.failNetwork();
          cut++;
        }
      }
    }
    return cut;
  }

  /** Ends whatever is still open. */
  closeAll(): void {
    for (const s of this.sockets) s.terminate();
    for (const r of this.requests) r.abort();
  }
}

// The shims find the client a connection belongs to by a string in its URL (the private id).
const taps = new Set<Tap>();

export function openTap(match: string): Tap {
  const tap = new Tap(match);
  taps.add(tap);
  return tap;
}

export function closeTap(tap: Tap): void {
  taps.delete(tap);
}

export function tapFor(url: string): Tap | undefined {
  for (const t of taps) if (url.includes(t.match)) return t;
  return undefined;
}

/** A copy of bytes the client sent: it may reuse its buffers after the call. */
export function copyBytes(data: string | ArrayBuffer | ArrayBufferView | null | undefined): Buffer {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data.slice(0));
  return Buffer.from(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}
