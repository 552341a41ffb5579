import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser, type TestUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * What the suites that fuzz a running server share: a real nats-server and the whole
 * app on free ports (messages go out at once: no coalescing window), a witness that
 * stays subscribed through the fuzzing, and a raw HTTP exchange for bytes no HTTP
 * client would send.
 */

export interface FuzzServer {
  readonly nats: TestNats;
  readonly app: TestApp;
  readonly witness: Witness;
  stop(): Promise<void>;
}

export async function startFuzzServer(): Promise<FuzzServer> {
  const nats = await startTestNats();
  // Hundreds of client requests from one public id in a few seconds: the per-id rate
  // (tested on its own in client-rate.test.ts) would answer 429 to what the fuzz checks.
  const app = await startTestApp(nats.url, {
    log: { level: 'info' },
    gateway: { coalesceWindowMs: 0 },
    limits: { clientRequestsPerSec: 1_000_000, clientRequestBurst: 1_000_000 },
  });
  const witness = await Witness.open(app);
  return {
    nats,
    app,
    witness,
    async stop() {
      witness.close();
      await app.stop();
      await nats.stop();
    },
  };
}

/**
 * One text-mode WebSocket subscriber held open while others send garbage. `check()`
 * publishes a message of its own to it and waits until it arrived; every message it
 * was sent must arrive, once, in order, whatever came in between.
 */
export class Witness {
  private sent: string[] = [];

  private constructor(
    private readonly app: TestApp,
    readonly user: TestUser,
    private readonly ws: TestWs,
  ) {}

  static async open(app: TestApp): Promise<Witness> {
    const user = newUser();
    return new Witness(app, user, await openWs(`${app.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`));
  }

  /** Messages this witness received that it did not send itself (a fuzz input's publish). */
  received(): Array<{ text: unknown }> {
    return parseTextFrames(this.ws.text());
  }

  /** `publish` stores a body on the witness's private id, by default through the backend's text publish. */
  async check(publish: (priv: string, body: string) => Promise<void> = this.httpPublish): Promise<void> {
    const n = this.sent.length;
    const body = JSON.stringify({ module_id: 'witness', command: 'check', params: { n } });
    this.sent.push(body);
    await publish(this.user.priv, body);
    const mine = (): unknown[] => this.received().map((m) => m.text).filter((t) => (t as { module_id?: unknown })?.module_id === 'witness');
    await eventually(`witness message ${n}`, () => mine().length > n, 5_000, 2);
    assert.deepEqual(mine(), this.sent.map((b) => JSON.parse(b)), 'the witness lost, repeated or reordered a message');
  }

  close(): void {
    this.ws.close();
  }

  private readonly httpPublish = async (priv: string, body: string): Promise<void> => {
    const res = await publishText(this.app.base, priv, body, 0);
    assert.equal(res.status, 200, 'the witness publish was not stored');
  };
}

export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: Buffer;
}

/**
 * Sends `request` as it is and reads one response: the status line, the headers, and
 * the body by its Content-Length (or until the server closes), so that a kept-alive
 * connection does not wait for the timeout.
 */
export function exchange(port: number, request: Uint8Array, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const response = parse(data);
      if (response === undefined) reject(err ?? new Error(`no complete response: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`));
      else resolve(response);
    };
    const timer = setTimeout(() => finish(new Error(`no response within ${timeoutMs} ms: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`)), timeoutMs);
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      const r = parse(data);
      if (r !== undefined && r.complete) finish();
    });
    socket.on('close', () => finish());
    socket.on('error', (err) => finish(err));
    socket.write(request);
  });
}

function parse(data: Buffer): (RawResponse & { complete: boolean }) | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = data.subarray(0, end).toString('latin1');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  if (m === null) return undefined;
  const status = Number(m[1]);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  const body = data.subarray(end + 4);
  const complete = status === 304 || (length !== null && body.length >= Number(length[1]));
  return { status, head, body: length === null ? body : body.subarray(0, Number(length[1])), complete };
}

/** The log lines that mean a request hit a fault of ours (answered 500) rather than a refusal. */
export function faults(app: TestApp): Array<Record<string, unknown>> {
  return app.logs.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
}
