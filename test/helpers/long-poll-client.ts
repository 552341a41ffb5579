import { request } from 'node:http';

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

/**
 * A long poll over node:http, which can bind the client socket (`localAddress`:
 * 127.0.0.2 … stand for other client addresses) and send any header.
 */
export function longPollFrom(url: string, opts: { localAddress?: string; headers?: Record<string, string> } = {}): { result: Promise<PollResult>; abort: () => void } {
  const started = Date.now();
  let abort = (): void => undefined;
  const result = new Promise<PollResult>((resolve, reject) => {
    const req = request(url, { localAddress: opts.localAddress, headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) if (value !== undefined) headers.set(name, String(value));
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks), tookMs: Date.now() - started });
      });
    });
    req.on('error', reject);
    req.end();
    abort = () => req.destroy();
  });
  result.catch(() => undefined);
  return { result, abort };
}
