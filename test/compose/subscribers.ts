import { WebSocket } from 'ws';
import { newUser, type TestUser } from '../helpers/channels.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';

/**
 * Browser-side clients through nginx's public port, as the official client behaves
 * where it matters here: text mode, CHANNEL_ID `priv:pub.sig` signed with the stack's
 * key (protocol §2.3), and after any interruption a reconnect with the mid of the last
 * message received, so that what was missed is replayed (§4).
 */
export abstract class Subscriber {
  readonly user: TestUser;
  /** n of every message received → when it first arrived. */
  readonly firstSeen = new Map<number, number>();
  duplicates = 0;
  /** Every message received, as parsed from the text frames. */
  readonly frames: ReturnType<typeof parseTextFrames> = [];
  /** mid of the last message received: the resume point. */
  mid: string | undefined;
  protected stopped = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly publicUrl: string,
    key: string,
  ) {
    this.user = newUser(key);
  }

  abstract readonly transport: 'websocket' | 'longpolling';

  protected url(path: string): string {
    return `${this.publicUrl}${path}?CHANNEL_ID=${this.user.token}${this.mid ? `&mid=${this.mid}` : ''}&revision=19`;
  }

  protected accept(text: string): void {
    const at = Date.now();
    for (const f of parseTextFrames(text)) {
      this.frames.push(f);
      this.mid = f.mid;
      const n = (f.text as { params?: { n?: unknown } }).params?.n;
      if (typeof n !== 'number') continue;
      if (this.firstSeen.has(n)) this.duplicates++;
      else this.firstSeen.set(n, at);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once message n arrived; rejects after timeoutMs. */
  async waitFor(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.firstSeen.has(n)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.transport} client did not receive message ${n} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  abstract start(): Promise<void>;
  abstract stop(): void;
}

export class WsSubscriber extends Subscriber {
  readonly transport = 'websocket';
  opens = 0;
  /** Close codes seen, in order (1012: the gateway drains). */
  readonly closes: number[] = [];
  /** HTTP statuses of refused handshakes. */
  readonly refusals: number[] = [];
  /** Every handshake: when it started, how long it took, 101 or the refusal's status (0: no answer). */
  readonly handshakes: Array<{ at: number; ms: number; status: number }> = [];
  private ws: WebSocket | undefined;

  constructor(
    publicUrl: string,
    key: string,
    private readonly reconnectDelayMs = 300,
  ) {
    super(publicUrl, key);
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  private connect(opened?: () => void, failed?: (err: Error) => void): void {
    const ws = new WebSocket(this.url('/bitrix/subws/').replace(/^http/, 'ws'));
    const at = Date.now();
    let answered = false;
    const handshake = (status: number): void => {
      if (answered) return;
      answered = true;
      this.handshakes.push({ at, ms: Date.now() - at, status });
    };
    this.ws = ws;
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => this.accept(data.toString('utf8')));
    ws.once('open', () => {
      handshake(101);
      this.opens++;
      opened?.();
    });
    ws.once('unexpected-response', (_req, res) => {
      handshake(res.statusCode ?? 0);
      this.refusals.push(res.statusCode ?? 0);
      res.resume();
      // A first handshake that is refused is an error for the caller; later ones are retried.
      if (failed && this.opens === 0) {
        this.stopped = true;
        failed(new Error(`WebSocket handshake refused: HTTP ${res.statusCode}`));
      }
      ws.terminate();
    });
    ws.once('close', (code) => {
      handshake(0);
      this.closes.push(code);
      if (!this.stopped) setTimeout(() => this.connect(), this.reconnectDelayMs);
    });
  }

  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }
}

const RESUME_SENTINEL = 'Thu, 01 Jan 1973 11:11:01 GMT';

export class LongPollSubscriber extends Subscriber {
  readonly transport = 'longpolling';
  /** Status of every answered poll, in order. */
  readonly statuses: number[] = [];
  errors = 0;
  private abort = new AbortController();

  /** Starts polling; the first poll is held by the server, so this resolves at once. */
  start(): Promise<void> {
    void this.run();
    return Promise.resolve();
  }

  /** The HTTP status of a single first poll (for the refused-key check). */
  async probe(): Promise<number> {
    const res = await fetch(this.url('/bitrix/sub/'), { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        // The official client gives up on a poll after 60 s.
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(60_000)]);
        const res = await fetch(this.url('/bitrix/sub/'), { signal });
        const text = Buffer.from(await res.arrayBuffer()).toString('utf8');
        this.statuses.push(res.status);
        if (res.status === 200) {
          this.accept(text);
          continue;
        }
        if (res.status === 304 && res.headers.get('expires') === RESUME_SENTINEL) {
          const last = res.headers.get('last-message-id');
          if (last) this.mid = last;
          continue;
        }
      } catch {
        if (this.stopped) return;
        this.errors++;
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }
}
