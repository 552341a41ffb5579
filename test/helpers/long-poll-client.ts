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
