import { HttpConn, headerValue } from '../raw-http.ts';
import { openRawWs, type RawWs } from '../raw-ws.ts';
import { nowMs, sleep } from '../util.ts';
import { countRefusal, drawMs, nap, subPath, type Identity, type Range, type SoakEnv } from './env.ts';
import { binaryFrame, textMessages } from './frames.ts';
import type { Tracker } from './ledger.ts';

/**
 * The clients whose every message is checked. They behave as the official client
 * does: after a close they did not ask for they come back in 0.5 s with their last
 * mid; after a sleep of their own they come back with it too.
 */

/** The official client's delay after a close it did not ask for. */
const RECONNECT_MS = 500;

function onFrame(t: Tracker, payload: Buffer, binary: boolean, errors: { parse: number }): void {
  try {
    for (const m of binary ? binaryFrame(payload).messages : textMessages(payload)) t.onMessage(m);
  } catch {
    errors.parse++;
  }
}

export interface WsTimings {
  awake: Range;
  away: Range;
}

/** Where a slow reader's pauses are filled: publishes to its channel until `stop()` says so. */
export type Burst = (client: CheckedWs, stop: () => boolean) => Promise<void>;

/**
 * A WebSocket client checked message by message. A sleeper stays connected for
 * `awake`, leaves (a close handshake or a dropped socket, half each), stays away for
 * `away` and comes back with its mid. A slow reader (`burst` given) stays connected
 * but stops reading its socket for `away` while `burst` publishes to it, so the
 * server's outbox fills and it is closed (4008); it then reads what had arrived and
 * resumes with its mid.
 */
export class CheckedWs {
  private ws: RawWs | undefined;
  private closed: Promise<number> | undefined;
  /** Closes the server chose, by code. */
  readonly serverCloses: Record<string, number> = {};
  readonly errors = { parse: 0 };
  pauses = 0;
  leaves = 0;

  constructor(
    private readonly env: SoakEnv,
    readonly tracker: Tracker,
    readonly id: Identity,
    readonly binary: boolean,
    private readonly timings: WsTimings,
    private readonly burst?: Burst,
  ) {}

  async run(): Promise<void> {
    const env = this.env;
    while (!env.finished) {
      await this.stayConnected(env.ending ? Infinity : nowMs() + drawMs(this.timings.awake));
      if (env.finished) break;
      if (env.ending) continue;
      if (this.burst === undefined) await this.leaveAndSleep();
      else await this.pauseReading(this.burst);
    }
    await this.leave(true);
  }

  /** Keeps a connection until `until` (or the end of the run), coming back after every close it did not ask for. */
  private async stayConnected(until: number): Promise<void> {
    const env = this.env;
    while (!env.finished && nowMs() < until && !(env.ending && until !== Infinity)) {
      if (this.ws === undefined && !(await this.connect())) {
        await sleep(1_000);
        continue;
      }
      const code = await Promise.race([this.closed!, sleep(Math.min(250, Math.max(0, until - nowMs()))).then(() => undefined)]);
      if (code === undefined) continue;
      this.serverCloses[code] = (this.serverCloses[code] ?? 0) + 1;
      this.ws = undefined;
      await sleep(RECONNECT_MS);
    }
  }

  private async connect(): Promise<boolean> {
    const resumeFrom = this.tracker.mid;
    this.tracker.beginConnection(resumeFrom);
    let resolveClosed!: (code: number) => void;
    const closed = new Promise<number>((r) => (resolveClosed = r));
    try {
      this.ws = await openRawWs(
        { host: this.env.host, port: this.env.port, path: subPath(true, this.id, this.binary, resumeFrom), timeoutMs: 15_000 },
        { onMessage: (p, b) => onFrame(this.tracker, p, b || this.binary, this.errors), onClose: (code) => resolveClosed(code) },
      );
    } catch (err) {
      countRefusal(this.env, err);
      return false;
    }
    this.closed = closed;
    this.tracker.markOpen(nowMs(), resumeFrom !== undefined);
    return true;
  }

  /** Ends the connection: a close handshake or (not `clean`, half the time) a dropped socket, as a tab that is closed or loses its network. */
  private async leave(clean: boolean): Promise<void> {
    const ws = this.ws;
    if (ws === undefined) return;
    this.ws = undefined;
    if (clean || Math.random() < 0.5) ws.close(1000);
    else ws.terminate();
    await Promise.race([this.closed, sleep(2_000)]);
    ws.terminate();
  }

  private async leaveAndSleep(): Promise<void> {
    this.leaves++;
    await this.leave(false);
    await nap(drawMs(this.timings.away), () => this.env.ending || this.env.finished);
  }

  private async pauseReading(burst: Burst): Promise<void> {
    const ws = this.ws;
    if (ws === undefined) return;
    this.pauses++;
    ws.socket.pause();
    let stop = false;
    const filling = burst(this, () => stop || this.env.ending || this.env.finished);
    await nap(drawMs(this.timings.away), () => this.env.ending || this.env.finished);
    stop = true;
    await filling;
    ws.socket.resume();
  }
}

/**
 * A long-poll client checked message by message: it polls with its mid as the
 * official client does (a 304's Last-Message-Id becomes its mid), and every `awake`
 * it drops its connection in the middle of a poll and sleeps for `away`.
 */
export class CheckedLp {
  private conn: HttpConn;
  readonly errors = { parse: 0 };
  readonly statuses: Record<string, number> = {};
  sleeps = 0;

  constructor(
    private readonly env: SoakEnv,
    readonly tracker: Tracker,
    readonly id: Identity,
    readonly binary: boolean,
    private readonly timings: WsTimings,
  ) {
    this.conn = new HttpConn(env.host, env.port);
  }

  async run(): Promise<void> {
    const env = this.env;
    while (!env.finished) {
      await this.pollUntil(env.ending ? Infinity : nowMs() + drawMs(this.timings.awake));
      if (env.finished || env.ending) continue;
      this.sleeps++;
      this.conn.close();
      await nap(drawMs(this.timings.away), () => env.ending || env.finished);
    }
    this.conn.close();
  }

  private async pollUntil(until: number): Promise<void> {
    const env = this.env;
    while (!env.finished && nowMs() < until && !(env.ending && until !== Infinity)) {
      const mid = this.tracker.mid;
      this.tracker.beginConnection(mid);
      const head = `GET ${subPath(false, this.id, this.binary, mid)} HTTP/1.1\r\nHost: ${env.host}:${env.port}\r\n\r\n`;
      const answer = this.conn.request(head, undefined, 90_000);
      answer.catch(() => undefined);
      // A sleep that begins in the middle of a poll drops the connection, answer or not.
      let cut = false;
      const watch = (async () => {
        while (!cut && !env.finished && nowMs() < until && !(env.ending && until !== Infinity)) await sleep(250);
        if (!cut) this.conn.close();
      })();
      let res;
      try {
        res = await answer;
      } catch (err) {
        cut = true;
        await watch;
        if (!(nowMs() >= until || env.finished || env.ending)) {
          countRefusal(env, err);
          await sleep(RECONNECT_MS);
        }
        continue;
      }
      cut = true;
      await watch;
      this.statuses[res.status] = (this.statuses[res.status] ?? 0) + 1;
      if (res.status === 200) {
        this.tracker.markOpen(nowMs(), mid !== undefined);
        onFrame(this.tracker, res.body, this.binary, this.errors);
      } else if (res.status === 304) {
        this.tracker.markOpen(nowMs(), mid !== undefined);
        const last = headerValue(res.head, 'Last-Message-Id');
        if (last !== undefined && /^\d{26}$/.test(last)) this.tracker.adoptMid(last);
      } else {
        await sleep(1_000);
      }
    }
  }
}
