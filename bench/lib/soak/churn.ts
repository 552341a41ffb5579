import { HttpConn, headerValue } from '../raw-http.ts';
import { openRawWs } from '../raw-ws.ts';
import { nowMs, sleep } from '../util.ts';
import { Bag, countRefusal, drawMs, nap, newIdentity, subPath, type Range, type SoakEnv } from './env.ts';
import { binaryFrame, textMessages } from './frames.ts';

/**
 * Connection churn: every slot opens a connection as a new user (fresh private and
 * public ids, one of the shared channels), keeps it for `stay`, drops it (a close
 * handshake, a dropped socket, or a long poll abandoned while held) and starts over
 * at once. Nothing is checked per message; the point is the server's state for
 * users that come and go: it must not grow.
 */
export class Churn {
  /** Private ids of the churn users connected now: the publisher sends some messages to them. */
  readonly open = new Bag<string>();
  wsConnects = 0;
  lpPolls = 0;
  messages = 0;
  parseErrors = 0;
  failures = 0;

  constructor(
    private readonly env: SoakEnv,
    private readonly shared: readonly string[],
    private readonly stay: Range,
  ) {}

  private count(payload: Buffer, binary: boolean): void {
    try {
      this.messages += binary ? binaryFrame(payload).messages.length : textMessages(payload).length;
    } catch {
      this.parseErrors++;
    }
  }

  private sharedChannel(): string {
    return this.shared[Math.floor(Math.random() * this.shared.length)]!;
  }

  /** One WebSocket slot until the load ends. */
  async wsSlot(stopped: () => boolean): Promise<void> {
    const env = this.env;
    while (!stopped()) {
      const id = newIdentity(env.key, this.sharedChannel());
      const binary = Math.random() < 0.5;
      let resolveClosed!: () => void;
      const closed = new Promise<void>((r) => (resolveClosed = r));
      let ws;
      try {
        ws = await openRawWs(
          { host: env.host, port: env.port, path: subPath(true, id, binary, undefined), timeoutMs: 15_000 },
          { onMessage: (p, b) => this.count(p, b || binary), onClose: () => resolveClosed() },
        );
      } catch (err) {
        this.failures++;
        countRefusal(env, err);
        await sleep(500);
        continue;
      }
      this.wsConnects++;
      this.open.add(id.priv);
      await Promise.race([closed, nap(drawMs(this.stay), stopped)]);
      this.open.delete(id.priv);
      if (Math.random() < 0.5) ws.close(1000);
      else ws.terminate();
      await Promise.race([closed, sleep(2_000)]);
      ws.terminate();
    }
  }

  /** One long-poll slot until the load ends: a user polls with its mid for `stay`, then drops the held poll. */
  async lpSlot(stopped: () => boolean): Promise<void> {
    const env = this.env;
    while (!stopped()) {
      const id = newIdentity(env.key, this.sharedChannel());
      const binary = Math.random() < 0.5;
      const conn = new HttpConn(env.host, env.port);
      const until = nowMs() + drawMs(this.stay);
      let mid: string | undefined;
      this.open.add(id.priv);
      let gone = false;
      const watch = (async () => {
        await nap(Math.max(0, until - nowMs()), stopped);
        gone = true;
        conn.close();
      })();
      while (!gone) {
        try {
          this.lpPolls++;
          const res = await conn.request(`GET ${subPath(false, id, binary, mid)} HTTP/1.1\r\nHost: ${env.host}:${env.port}\r\n\r\n`, undefined, 90_000);
          if (res.status === 200) {
            this.count(res.body, binary);
            const msgs = binary ? binaryFrame(res.body).messages : textMessages(res.body);
            mid = msgs.at(-1)?.mid ?? mid;
          } else if (res.status === 304) {
            const last = headerValue(res.head, 'Last-Message-Id');
            if (last !== undefined && /^\d{26}$/.test(last)) mid = last;
          } else {
            this.failures++;
            await sleep(500);
          }
        } catch (err) {
          if (!gone) {
            this.failures++;
            countRefusal(env, err);
            await sleep(500);
          }
        }
      }
      this.open.delete(id.priv);
      await watch;
    }
  }
}
