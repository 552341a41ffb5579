import { HandshakeError, openRawWs, type RawWs, type RawWsHandlers } from './raw-ws.ts';
import { log, nowMs, sleep } from './util.ts';

export interface ConnectManyOptions<T> {
  count: number;
  concurrency: number;
  addresses: readonly string[];
  deadline: number;
  label: string;
  open: (i: number, localAddress: string) => Promise<T>;
  retries?: number;
}

/**
 * Opens `count` connections with at most `concurrency` attempts in flight (so the
 * connect phase is not a SYN flood), round-robin over the source addresses. A failed
 * attempt is retried a few times; refusals by the server (HandshakeError) are not,
 * except 503 (admission control), which is retried after a short random delay.
 */
export async function connectMany<T>(opts: ConnectManyOptions<T>): Promise<{ conns: T[]; ms: number; retries: number; refused503: number }> {
  const conns: T[] = new Array<T>(opts.count);
  const start = nowMs();
  let next = 0;
  let done = 0;
  let retries = 0;
  let refused503 = 0;
  let failure: Error | undefined;
  let lastLog = start;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      if (next >= opts.count) return;
      if (nowMs() > opts.deadline) {
        failure = new Error(`${opts.label}: connect phase deadline passed with ${done}/${opts.count} connected`);
        return;
      }
      const i = next++;
      const addr = opts.addresses[i % opts.addresses.length]!;
      for (let attempt = 0; ; attempt++) {
        try {
          conns[i] = await opts.open(i, addr);
          done++;
          break;
        } catch (err) {
          // 503 is the server's admission control ("retry later"): retried like a client would, and counted.
          const busy = err instanceof HandshakeError && err.status === 503;
          const limit = busy ? 30 : (opts.retries ?? 3);
          if ((err instanceof HandshakeError && !busy) || attempt >= limit || nowMs() > opts.deadline) {
            failure = new Error(`${opts.label}: connection ${i} from ${addr} failed after ${attempt + 1} attempt(s): ${String(err)} (${done}/${opts.count} connected)`);
            return;
          }
          if (busy) refused503++;
          else retries++;
          await sleep(busy ? 250 + Math.random() * 500 : 100 * (attempt + 1));
        }
      }
      const t = nowMs();
      if (t - lastLog > 2_000) {
        lastLog = t;
        log(`${opts.label}: ${done}/${opts.count} connected`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency, opts.count)) }, worker));
  if (failure !== undefined) throw failure;
  if (refused503 > 0) log(`${opts.label}: the server answered 503 (busy) ${refused503} times; those attempts were retried`);
  return { conns, ms: nowMs() - start, retries, refused503 };
}

/** connectMany for raw WebSocket clients. */
export function connectWsMany(opts: {
  count: number;
  concurrency: number;
  addresses: readonly string[];
  deadline: number;
  label: string;
  host: string;
  port: number;
  timeoutMs: number;
  path: (i: number) => string;
  handlers: (i: number) => RawWsHandlers;
}): Promise<{ conns: RawWs[]; ms: number; retries: number; refused503: number }> {
  return connectMany({
    count: opts.count,
    concurrency: opts.concurrency,
    addresses: opts.addresses,
    deadline: opts.deadline,
    label: opts.label,
    open: (i, localAddress) =>
      openRawWs({ host: opts.host, port: opts.port, path: opts.path(i), localAddress, timeoutMs: opts.timeoutMs }, opts.handlers(i)),
  });
}

/** Closes every connection (close handshake) and waits, bounded, until their sockets are gone. */
export async function closeAll(conns: readonly (RawWs | undefined)[], timeoutMs = 5_000): Promise<void> {
  for (const c of conns) c?.close();
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline && conns.some((c) => c !== undefined && !c.socket.destroyed)) await sleep(50);
  for (const c of conns) c?.terminate();
}
