import { newUser } from '../helpers/channels.ts';
import type { Probe } from './context.ts';
import { SilentWsClient } from '../helpers/silent-ws-client.ts';

/**
 * Short requests through nginx's public port that must never wait on a gateway that
 * is gone: a WebSocket handshake, a long-poll pre-flight and a client request. Each
 * gives up after 20 s (status 0).
 */
const PROBE_TIMEOUT_MS = 20_000;

async function timed(what: string, fn: () => Promise<number>): Promise<Probe> {
  const at = Date.now();
  let status = 0;
  try {
    status = await fn();
  } catch {
    status = 0;
  }
  return { what, at, ms: Date.now() - at, status };
}

export function probeOnce(publicUrl: string, key: string): Promise<Probe[]> {
  const user = newUser(key);
  return Promise.all([
    timed('WebSocket handshake /bitrix/subws/', async () => {
      const c = await SilentWsClient.open(`${publicUrl}/bitrix/subws/?CHANNEL_ID=${user.token}`, PROBE_TIMEOUT_MS).catch((err: Error) => {
        const m = /HTTP\/1\.1 (\d{3})/.exec(err.message);
        if (m) return Number(m[1]);
        throw err;
      });
      if (typeof c === 'number') return c;
      c.destroy();
      return 101;
    }),
    timed('OPTIONS /bitrix/sub/', async () => {
      const res = await fetch(`${publicUrl}/bitrix/sub/?CHANNEL_ID=${user.token}`, { method: 'OPTIONS', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.arrayBuffer();
      return res.status;
    }),
    timed('POST /bitrix/rest/', async () => {
      // No request in the body: the gateway answers 400 itself, at once.
      const res = await fetch(`${publicUrl}/bitrix/rest/?CHANNEL_ID=${user.token}`, { method: 'POST', body: '', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.arrayBuffer();
      return res.status;
    }),
  ]);
}

/** Probes every `intervalMs` until stopped; collects into `out`. */
export function probeLoop(publicUrl: string, key: string, out: Probe[], intervalMs = 250): { stop: () => Promise<void> } {
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      out.push(...(await probeOnce(publicUrl, key)));
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** Slow or failed probes: longer than `boundMs`, no answer, or a 5xx from nginx. */
export function badProbes(probes: Probe[], boundMs: number): Probe[] {
  return probes.filter((p) => p.ms > boundMs || p.status === 0 || p.status >= 500);
}
