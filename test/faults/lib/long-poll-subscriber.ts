import { newClientRec, midGreater, type ClientRec, type Format } from './delivery-record.ts';
import { OfficialSession, parseEvents, recordBatch, type IncomingEvent } from './official-session.ts';
import type { Rng } from './rng.ts';
import type { Subscriber, SubscriberSpec } from './subscriber.ts';

/** The client trusts Last-Message-Id only with exactly this Expires (official-client.md §6). */
const EXPIRES_SENTINEL = 'Thu, 01 Jan 1973 11:11:01 GMT';
/** The official client aborts a poll after 60 s; the suite's gateways hold polls for a few seconds, so less will do. */
const POLL_ABORT_MS = 20_000;

/**
 * A long-poll subscriber like the official client's LongPollingConnector: after a
 * 200 it re-polls at once with the mid of the last message, after a 304 with the
 * `Last-Message-Id`; an empty 200 forgets the mid. Each poll goes to a gateway
 * picked at random (as a load balancer would); after an error it waits 0.3–1 s.
 */
export class LongPollSubscriber implements Subscriber {
  readonly rec: ClientRec;
  private readonly session = new OfficialSession();
  private conn = 0;
  private stopped = false;
  private asleep = false;
  private current: AbortController | undefined;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  tamper: ((events: IncomingEvent[]) => IncomingEvent[]) | undefined;

  constructor(
    private readonly spec: SubscriberSpec & { format: Format },
    private readonly rng: Rng,
  ) {
    this.rec = newClientRec(spec.id, 'longpoll', spec.format, spec.channels, spec.gateways.map((g) => g.name));
  }

  start(): void {
    this.loop ??= this.run();
  }

  sleep(ms: number): Promise<void> {
    return this.sleepUntil(new Promise((r) => setTimeout(r, ms)));
  }

  sleepUntil(wake: Promise<unknown>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.asleep = true;
    const entry: { from: number; to: number | undefined } = { from: Date.now(), to: undefined };
    this.rec.sleeps.push(entry);
    this.current?.abort();
    return wake.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      entry.to = Date.now();
      this.asleep = false;
      this.wake?.();
    });
  }

  stop(): void {
    this.rec.stoppedAt ??= Date.now();
    this.close();
  }

  close(): void {
    this.stopped = true;
    this.current?.abort();
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.asleep) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const ok = await this.pollOnce();
      if (!ok && !this.stopped && !this.asleep) await new Promise((r) => setTimeout(r, this.rng.between(300, 1_000)));
    }
  }

  /** One poll; true when the client polls again at once (200 or a resumable 304). */
  private async pollOnce(): Promise<boolean> {
    const gw = this.rng.pick(this.spec.gateways);
    const conn = ++this.conn;
    const binary = this.spec.format === 'binary';
    const startMid = this.session.mid ?? undefined;
    const url =
      `${gw.base()}/bitrix/sub/?CHANNEL_ID=${this.spec.channelId}` +
      `${binary ? '&binaryMode=true' : ''}${this.session.resumeParams(!binary)}&revision=19`;
    const rec = { conn, gateway: gw.name, startMid, startedAt: Date.now(), openedAt: undefined as number | undefined, endedAt: undefined as number | undefined, end: undefined as string | undefined, messages: 0 };
    this.rec.conns.push(rec);
    const ac = new AbortController();
    this.current = ac;
    const timer = setTimeout(() => ac.abort(), POLL_ABORT_MS);
    try {
      const res = await fetch(url, { signal: ac.signal });
      const body = Buffer.from(await res.arrayBuffer());
      const at = Date.now();
      rec.openedAt = at;
      rec.endedAt = at;
      rec.end = String(res.status);
      if (res.status === 200) {
        let events: IncomingEvent[];
        try {
          events = body.length === 0 ? [] : parseEvents(body, binary);
        } catch {
          events = [];
        }
        if (this.tamper) events = this.tamper(events);
        rec.messages = events.length;
        recordBatch(this.rec, this.session, events, { conn, gateway: gw.name, frame: 0, lastMid: startMid, startMid, at });
        return true;
      }
      if (res.status === 304) {
        const lmid = res.headers.get('last-message-id') ?? '';
        if (res.headers.get('expires') === EXPIRES_SENTINEL && lmid !== '') {
          if (startMid !== undefined && lmid !== startMid && !midGreater(lmid, startMid)) {
            this.rec.midIssues.push({ conn, gateway: gw.name, at, previous: startMid, mid: lmid, kind: 'last-message-id-went-back' });
          }
          this.session.mid = lmid;
        }
        return true;
      }
      return false;
    } catch (err) {
      rec.endedAt = Date.now();
      rec.end = ac.signal.aborted ? (this.asleep || this.stopped ? 'aborted (sleep/stop)' : 'aborted (no answer)') : `error ${(err as Error).message}`;
      return false;
    } finally {
      clearTimeout(timer);
      if (this.current === ac) this.current = undefined;
    }
  }
}
