import { within } from '../wait.ts';
import type { Session } from './session.ts';

/** What the client did so far, one line per item, for failure messages (the private id redacted). */
export function describeSession(s: Session): Record<string, unknown> {
  const { tap, inbox } = s;
  const redact = (url: string): string => url.replaceAll(s.priv, '<priv>').replace(/CHANNEL_ID=[^&]*/, (m) => m.slice(0, 30) + '…');
  return {
    transport: s.transport,
    connected: s.client.isConnected(),
    statuses: [...inbox.statuses],
    connections: tap.connections.map((c) => `${c.transport} ${redact(c.url)}`),
    closes: tap.closes.map((c) => `${c.code} ${c.reason}`),
    pollAnswers: tap.pollAnswers.map((a) => `${a.status} ${a.body.length}B lmid=${String(a.headers['last-message-id'] ?? '-')}`),
    frames: tap.frames.length,
    events: inbox.events.map((e) => `${e.command} ${JSON.stringify(e.params)}`),
    clientEvents: inbox.clientEvents.map((e) => `${e.command} ${JSON.stringify(e.params)} ${JSON.stringify(e.extra.sender)}`),
    sentFrames: tap.sentFrames.length,
    publishes: tap.publishes.map((p) => `${p.method} ${redact(p.url)} ${p.body.length}B -> ${String(p.status ?? 'pending')}`),
    handlerErrors: tap.handlerErrors.map(String),
    restCalls: [...s.restCalls],
  };
}

/** Polls `cond` until it holds; on timeout the error carries the session's state. */
export async function waitUntil(s: Session, cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(describeSession(s), null, 1)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `within`, with the session's state attached to the error. */
export function withinSession<T>(s: Session, what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  return within(what, p, timeoutMs).catch((e: unknown) => {
    const message = e instanceof Error ? e.message : `${what} failed: ${JSON.stringify(e)}`;
    throw new Error(`${message}: ${JSON.stringify(describeSession(s), null, 1)}`, { cause: e });
  });
}
