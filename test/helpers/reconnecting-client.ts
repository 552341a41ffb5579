import { WebSocket } from 'ws';
import { parseTextFrames } from './text-frames.ts';

/**
 * A subscriber that behaves like the official client where it matters for
 * failover tests: on a close other than 4010 it reconnects after ~0.5 s, to the
 * next gateway of its list, with the mid of the last message it got; it drops a
 * message whose mid is among its last 10 (the official client's de-duplication).
 */
export class ReconnectingClient {
  /** `params.n` of every message accepted, in arrival order (after de-duplication). */
  readonly received: number[] = [];
  readonly closes: number[] = [];
  reconnects = 0;
  private lastMids: string[] = [];
  private mid: string | undefined;
  private ws: WebSocket | undefined;
  private next = 0;
  private stopped = false;
  connectedTo: string | undefined;

  constructor(
    private readonly bases: readonly string[],
    private readonly channelId: string,
    private readonly reconnectDelayMs = 500,
  ) {}

  start(): Promise<void> {
    return this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }

  private connect(): Promise<void> {
    const base = this.bases[this.next % this.bases.length]!;
    this.next++;
    const url = `${base}/bitrix/subws/?CHANNEL_ID=${this.channelId}${this.mid ? `&mid=${this.mid}` : ''}&revision=19`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      for (const f of parseTextFrames(data.toString('utf8'))) {
        if (this.lastMids.includes(f.mid)) continue;
        this.lastMids.push(f.mid);
        if (this.lastMids.length > 10) this.lastMids.shift();
        this.mid = f.mid;
        this.received.push((f.text as { params: { n: number } }).params.n);
      }
    });
    const opened = new Promise<void>((resolve) => {
      ws.once('open', () => {
        this.connectedTo = base;
        resolve();
      });
      ws.once('close', () => resolve());
    });
    ws.once('close', (code) => {
      this.closes.push(code);
      this.connectedTo = undefined;
      if (this.stopped || code === 4010) return;
      this.reconnects++;
      setTimeout(() => void this.connect(), this.reconnectDelayMs);
    });
    return opened;
  }
}
