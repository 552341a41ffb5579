import { connect as netConnect } from 'node:net';
import { WebSocket } from 'ws';
import { within } from './wait.ts';

/** A WebSocket client that records every frame and the close. */
export class TestWs {
  readonly ws: WebSocket;
  readonly frames: Array<{ data: Buffer; binary: boolean; at: number }> = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(url: string, opts: { autoPong?: boolean } = {}) {
    this.ws = new WebSocket(url, { autoPong: opts.autoPong ?? true });
    this.ws.on('error', () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: ${res.statusCode}`)));
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

export async function openWs(url: string, opts?: { autoPong?: boolean }): Promise<TestWs> {
  const c = new TestWs(url, opts);
  await within(`open ${url}`, c.opened, 5_000);
  return c;
}

/** Sends raw bytes and returns everything the server wrote until it closed (or the timeout). */
export function rawRequest(port: number, request: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.write(request);
  });
}

/** A text publish as the PHP module sends it. */
export async function publishText(
  base: string,
  channels: string,
  body: string,
  expirySec?: number,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/bitrix/pub/?CHANNEL_ID=${channels}`, {
    method: 'POST',
    body,
    headers: { ...(expirySec === undefined ? {} : { 'Message-Expiry': String(expirySec) }), ...headers },
  });
}

/** Parses the concatenated text frames into their JSON envelopes. */
export function parseTextFrames(text: string): Array<{ id: number; mid: string; channel: string; tag: string; time: string; text: unknown }> {
  const out = [];
  for (const m of text.matchAll(/#!NGINXNMS!#(.*?)#!NGINXNME!#/g)) out.push(JSON.parse(m[1]!));
  return out;
}

export interface PollResult {
  status: number;
  headers: Headers;
  body: Buffer;
  /** Milliseconds from request to answer. */
  tookMs: number;
}

/** Starts a long poll; `result` settles when the server answers. */
export function longPoll(url: string): { result: Promise<PollResult>; abort: () => void } {
  const ac = new AbortController();
  const started = Date.now();
  const result = fetch(url, { signal: ac.signal }).then(async (res) => ({
    status: res.status,
    headers: res.headers,
    body: Buffer.from(await res.arrayBuffer()),
    tookMs: Date.now() - started,
  }));
  result.catch(() => undefined);
  return { result, abort: () => ac.abort() };
}
