import { openRawWs, type RawWs } from '../raw-ws.ts';
import { nowMs, sleep } from '../util.ts';
import { countRefusal, hexId, hmacHex, type SoakEnv } from './env.ts';
import { binaryFrame, clientChannelStats, clientPublish, textMessages, type Received } from './frames.ts';
import { FloodTracker } from './ledger.ts';

/** The official client's delay after a close it did not ask for. */
const RECONNECT_MS = 500;

/** A user that receives what the flooder publishes to its public id; it stays connected and resumes by mid if closed. */
export class Sink {
  readonly priv = hexId();
  readonly pub = hexId();
  readonly flood = new FloodTracker();
  readonly serverCloses: Record<string, number> = {};
  other = 0;
  parseErrors = 0;
  private ws: RawWs | undefined;

  constructor(
    private readonly env: SoakEnv,
    readonly binary: boolean,
  ) {}

  private onFrame(p: Buffer): void {
    let msgs: Received[];
    try {
      msgs = this.binary ? binaryFrame(p).messages : textMessages(p);
    } catch {
      this.parseErrors++;
      return;
    }
    for (const m of msgs) {
      const f = (m.event?.params as { f?: unknown } | undefined)?.f;
      if (m.event?.command === 'f' && typeof f === 'number') this.flood.add(f, m.mid);
      else this.other++;
    }
  }

  async run(): Promise<void> {
    const env = this.env;
    const channelId = `${this.priv}:${this.pub}.${hmacHex(env.key, `${this.priv}:${this.pub}`)}`;
    while (!env.finished) {
      const mid = this.flood.mid;
      let resolveClosed!: (code: number) => void;
      const closed = new Promise<number>((r) => (resolveClosed = r));
      try {
        this.ws = await openRawWs(
          {
            host: env.host,
            port: env.port,
            path: `/bitrix/subws/?CHANNEL_ID=${channelId}${this.binary ? '&binaryMode=true' : ''}${mid === undefined ? '' : `&mid=${mid}`}&revision=19`,
            timeoutMs: 15_000,
          },
          { onMessage: (p) => this.onFrame(p), onClose: (code) => resolveClosed(code) },
        );
      } catch (err) {
        countRefusal(env, err);
        await sleep(1_000);
        continue;
      }
      let code: number | undefined;
      while (code === undefined && !env.finished) code = await Promise.race([closed, sleep(250).then(() => undefined)]);
      if (code !== undefined) {
        this.serverCloses[code] = (this.serverCloses[code] ?? 0) + 1;
        await sleep(RECONNECT_MS);
      }
    }
    this.ws?.close(1000);
  }
}

/**
 * A binary-mode client that sends requests as fast as its socket takes them: client
 * publishes (`perRequest` messages, each to every sink's public id) and, every fourth
 * frame, a channelStats request. The server takes `limits.clientRequestsPerSec` of them
 * and stops reading the socket meanwhile. The channelStats answers tell how far the
 * server has read; the flooder stays at most `window` requests ahead of that, so what
 * it sent is handled within seconds of it stopping.
 */
export class Flooder {
  private readonly priv = hexId();
  private readonly pub = hexId();
  private seq = 0;
  requests = 0;
  statsSent = 0;
  statsAnswered = 0;
  connections = 0;
  readonly serverCloses: Record<string, number> = {};
  /** Flood sequences sent on connections the server closed: whether it stored them is unknown. */
  readonly uncertain: Array<[from: number, to: number]> = [];
  private statsAt: number[] = [];
  private answeredUpTo = 0;
  private ws: RawWs | undefined;

  constructor(
    private readonly env: SoakEnv,
    private readonly sinks: readonly Sink[],
    private readonly perRequest: number,
    private readonly window: number,
    private readonly expirySec: number,
  ) {}

  get messagesSent(): number {
    return this.seq;
  }

  private onFrame(p: Buffer): void {
    try {
      const n = binaryFrame(p).channelStats;
      for (let i = 0; i < n; i++) {
        this.statsAnswered++;
        this.answeredUpTo = this.statsAt.shift() ?? this.answeredUpTo;
      }
    } catch {
      // not a ResponseBatch: nothing the flooder waits for
    }
  }

  private frame(): Buffer {
    this.requests++;
    const to = this.sinks.map((s) => s.pub);
    if (this.requests % 4 === 0) {
      this.statsSent++;
      this.statsAt.push(this.requests);
      return clientChannelStats(this.env.key, to);
    }
    const bodies: string[] = [];
    for (let i = 0; i < this.perRequest; i++) bodies.push(`{"module_id":"soak","command":"f","params":{"f":${this.seq++}}}`);
    return clientPublish(this.env.key, to, bodies, this.expirySec);
  }

  async run(stopped: () => boolean): Promise<void> {
    const env = this.env;
    const channelId = `${this.priv}:${this.pub}.${hmacHex(env.key, `${this.priv}:${this.pub}`)}`;
    while (!stopped()) {
      let resolveClosed!: (code: number) => void;
      const closed = new Promise<number>((r) => (resolveClosed = r));
      let code: number | undefined;
      void closed.then((c) => (code = c));
      try {
        this.ws = await openRawWs(
          { host: env.host, port: env.port, path: `/bitrix/subws/?CHANNEL_ID=${channelId}&binaryMode=true&revision=19`, timeoutMs: 15_000 },
          { onMessage: (p) => this.onFrame(p), onClose: (c) => resolveClosed(c) },
        );
      } catch (err) {
        countRefusal(env, err);
        await sleep(1_000);
        continue;
      }
      this.connections++;
      // A new connection: requests of the old one that were not answered are gone with it.
      this.statsAt = [];
      this.answeredUpTo = this.requests;
      const firstSeq = this.seq;
      const ws = this.ws;
      while (code === undefined && !stopped()) {
        if (ws.socket.writableLength > 64 * 1024 || this.requests - this.answeredUpTo >= this.window) {
          await sleep(20);
          continue;
        }
        ws.send(this.frame(), true);
        // Yield now and then so the rest of the load generator runs.
        if (this.requests % 32 === 0) await sleep(0);
      }
      if (code !== undefined) {
        this.serverCloses[code] = (this.serverCloses[code] ?? 0) + 1;
        this.uncertain.push([firstSeq, this.seq]);
        await sleep(RECONNECT_MS);
      }
    }
  }

  /** After the flood stopped: waits until the server answered every channelStats sent (so it read everything). */
  async drain(timeoutMs: number): Promise<boolean> {
    const by = nowMs() + timeoutMs;
    while (this.ws?.isOpen === true && this.statsAt.length > 0 && nowMs() < by) await sleep(50);
    return this.ws?.isOpen === true && this.statsAt.length === 0;
  }

  close(): void {
    this.ws?.close(1000);
  }

  /** Flood sequences a sink does not have: `lost` (the connection stayed open to the end), `uncertain` (sent on one the server closed). */
  missingAt(sink: Sink): { lost: number; uncertain: number } {
    let lost = 0;
    let uncertain = 0;
    let u = 0;
    for (let s = 0; s < this.seq; s++) {
      while (u < this.uncertain.length && s >= this.uncertain[u]![1]) u++;
      if (sink.flood.has(s)) continue;
      const inUncertain = u < this.uncertain.length && s >= this.uncertain[u]![0];
      if (inUncertain) uncertain++;
      else lost++;
    }
    return { lost, uncertain };
  }
}
