import { WebSocket } from 'ws';
import { newClientRec, type ClientRec, type Format } from './delivery-record.ts';
import { OfficialSession, parseEvents, recordBatch, type IncomingEvent } from './official-session.ts';
import type { Rng } from './rng.ts';
import type { Subscriber, SubscriberSpec } from './subscriber.ts';

/**
 * A WebSocket subscriber that behaves like the official client: text or binary
 * mode, and on any close or error it reconnects after 0.3–1 s, to the next gateway
 * of its list (round robin, so a dead gateway's clients move to the other), with
 * the mid (and in text mode tag/time) of the last message it got.
 */
export class WsSubscriber implements Subscriber {
  readonly rec: ClientRec;
  private readonly session = new OfficialSession();
  private ws: WebSocket | undefined;
  private next: number;
  private conn = 0;
  private asleep = false;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Test hook: rewrites a batch before the client handles it (the checker's self-test). */
  tamper: ((events: IncomingEvent[]) => IncomingEvent[]) | undefined;

  constructor(
    private readonly spec: SubscriberSpec & { format: Format },
    private readonly rng: Rng,
  ) {
    this.rec = newClientRec(spec.id, 'ws', spec.format, spec.channels, spec.gateways.map((g) => g.name));
    this.next = rng.int(0, spec.gateways.length);
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.connect();
  }

  /** Disconnects now and comes back with its mid after `ms`. */
  sleep(ms: number): Promise<void> {
    return this.sleepUntil(new Promise((r) => setTimeout(r, ms)));
  }

  sleepUntil(wake: Promise<unknown>): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.asleep = true;
    clearTimeout(this.reconnectTimer);
    const entry: { from: number; to: number | undefined } = { from: Date.now(), to: undefined };
    this.rec.sleeps.push(entry);
    this.ws?.close(1000, 'sleep');
    return wake.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      entry.to = Date.now();
      this.asleep = false;
      if (!this.stopped) this.connect();
    });
  }

  stop(): void {
    this.stopped = true;
    this.rec.stoppedAt ??= Date.now();
    clearTimeout(this.reconnectTimer);
    this.ws?.terminate();
  }

  /** Stops without counting as "not alive at the end" (the run is over). */
  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.ws?.terminate();
  }

  private connect(): void {
    if (this.stopped || this.asleep) return;
    const gw = this.spec.gateways[this.next % this.spec.gateways.length]!;
    this.next++;
    const conn = ++this.conn;
    const binary = this.spec.format === 'binary';
    const startMid = this.session.mid ?? undefined;
    const url =
      `${gw.wsBase()}/bitrix/subws/?CHANNEL_ID=${this.spec.channelId}` +
      `${binary ? '&binaryMode=true' : ''}${this.session.resumeParams(!binary)}&revision=19`;
    const rec = { conn, gateway: gw.name, startMid, startedAt: Date.now(), openedAt: undefined as number | undefined, endedAt: undefined as number | undefined, end: undefined as string | undefined, messages: 0 };
    this.rec.conns.push(rec);
    const ws = new WebSocket(url, { handshakeTimeout: 5_000 });
    this.ws = ws;
    let frame = 0;
    let lastMid = startMid;
    let ended = false;
    const end = (why: string): void => {
      if (ended) return;
      ended = true;
      rec.endedAt = Date.now();
      rec.end = why;
      if (this.ws === ws) this.ws = undefined;
      if (!this.stopped && !this.asleep) {
        this.reconnectTimer = setTimeout(() => this.connect(), this.rng.between(300, 1_000));
      }
    };
    ws.on('open', () => {
      rec.openedAt = Date.now();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (ended) return;
      let events: IncomingEvent[];
      try {
        events = parseEvents(data, isBinary);
      } catch {
        return; // the official client skips what it cannot parse
      }
      if (this.tamper) events = this.tamper(events);
      rec.messages += events.length;
      lastMid = recordBatch(this.rec, this.session, events, { conn, gateway: gw.name, frame: frame++, lastMid, startMid, at: Date.now() });
    });
    ws.on('error', (err) => end(`error ${err.message}`));
    ws.on('close', (code) => end(`close ${code}`));
  }
}
