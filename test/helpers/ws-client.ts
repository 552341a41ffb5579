import type { IncomingHttpHeaders } from 'node:http';
import { WebSocket } from 'ws';
import { within } from './wait.ts';

/** A WebSocket client that records every frame and the close. */
export class TestWs {
  readonly ws: WebSocket;
  readonly frames: Array<{ data: Buffer; binary: boolean; at: number }> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The status and headers of a refused handshake. */
  refusal: { status: number; headers: IncomingHttpHeaders } | undefined;
  private waiters: Array<() => void> = [];

  constructor(url: string, opts: TestWsOptions = {}) {
    this.ws = new WebSocket(url, { autoPong: opts.autoPong ?? true, localAddress: opts.localAddress, headers: opts.headers });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (req, res) => {
        this.refusal = { status: res.statusCode ?? 0, headers: res.headers };
        res.resume();
        req.destroy();
        reject(new Error(`handshake refused: ${res.statusCode}`));
      });
      this.ws.once('error', reject);
    });
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data: Buffer, binary) => {
      this.frames.push({ data: Buffer.from(data), binary, at: Date.now() });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits until at least `count` frames arrived; returns them. */
  async waitFrames(count: number, timeoutMs = 5_000): Promise<Array<{ data: Buffer; binary: boolean; at: number }>> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${count} frames, got ${this.frames.length}`);
      await within(`${count} frames`, new Promise<void>((r) => this.waiters.push(r)), left).catch(() => undefined);
    }
    return this.frames.slice(0, count);
  }

  /** All text received so far, concatenated. */
  text(): string {
    return this.frames.map((f) => f.data.toString('utf8')).join('');
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

export interface TestWsOptions {
  autoPong?: boolean;
  /** Local address of the client socket (127.0.0.2 …: another client address on loopback). */
  localAddress?: string;
  headers?: Record<string, string>;
}

export async function openWs(url: string, opts?: TestWsOptions): Promise<TestWs> {
  const c = new TestWs(url, opts);
  await within(`open ${url}`, c.opened, 5_000);
  return c;
}
