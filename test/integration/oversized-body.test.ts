import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser, signRaw } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { hex, incomingMessages } from '../helpers/protobuf.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';

/**
 * A body over limits.maxPayloadBytes on any route of any listener (public, internal,
 * admin) ends the same way every time: 413, and the connection is closed. Neither the
 * rest of the body nor a request sent behind it on the same connection is handled:
 * both are publishes to a canary subscriber, which must never receive one.
 */

const LIMIT = 16 * 1024;
const ITERATIONS = 200;
let nats: TestNats;
let t: TestApp;
let canaryWs: TestWs;
const canary = newUser();
const sender = newUser();
const ports = { public: 0, internal: 0, admin: 0 };

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, {
    limits: { maxPayloadBytes: LIMIT },
    log: { level: 'warn' },
    servers: [
      { port: 0, hostname: '127.0.0.1', routes: { sub: '/bitrix/subws/', rest: '/bitrix/rest/' } },
      { port: 0, hostname: '127.0.0.1', routes: { pub: '/bitrix/pub/', stat: '/server-stat/' } },
    ],
  });
  ports.public = t.port;
  ports.internal = t.app.addresses[1]!.port;
  ports.admin = t.app.adminAddress!.port;
  canaryWs = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${canary.token}`);
});
after(async () => {
  canaryWs?.close();
  await t?.stop();
  await nats?.stop();
});

type Listener = keyof typeof ports;

/** A valid request that publishes `marker` to the canary, as the listener allows. */
function canaryPublish(listener: Listener, marker: string): Buffer {
  const text = `{"module_id":"t","command":"${marker}","params":{}}`;
  if (listener === 'internal') {
    return Buffer.from(`POST /bitrix/pub/?CHANNEL_ID=${canary.priv} HTTP/1.1\r\nHost: x\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
  }
  if (listener === 'public') {
    const body = incomingMessages([{ receivers: [{ id: hex(canary.pub), isPrivate: false, signature: signRaw(`public:${canary.pub}`) }], body: text, expiry: 0 }]);
    return Buffer.concat([Buffer.from(`POST /bitrix/rest/?CHANNEL_ID=${sender.token} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
  }
  return Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
}

/** A keep-alive request each listener answers at once (no NATS round trip), and its status. */
const FIRST: Record<Listener, [string, string]> = {
  public: ['OPTIONS /bitrix/subws/ HTTP/1.1\r\nHost: x\r\n\r\n', '200'],
  internal: ['GET /nowhere/ HTTP/1.1\r\nHost: x\r\n\r\n', '404'],
  admin: ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', '200'],
};
const closing = (listener: Listener): Buffer => Buffer.from(FIRST[listener][0].replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));

/**
 * Writes `parts` in order on one connection (waiting for the first answer to begin
 * after `answerAfter` parts, when given) and reads until the server closes or 10 s pass.
 */
function exchange(port: number, parts: Buffer[], answerAfter?: number): Promise<{ text: string; closed: boolean; error?: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    let error: string | undefined;
    let sent = 0;
    const done = (): void => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ...(error === undefined ? {} : { error }) });
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, 10_000);
    const send = (upTo: number): void => {
      for (; sent < upTo && !socket.destroyed; sent++) {
        const part = parts[sent]!;
        for (let i = 0; i < part.length; i += 4096) socket.write(part.subarray(i, i + 4096));
      }
    };
    socket.on('data', (c) => {
      chunks.push(c);
      send(parts.length);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
    send(answerAfter ?? parts.length);
  });
}

/** `size` bytes whose end is a request of its own (publishing `marker` to the canary). */
function bodyEndingIn(size: number, tail: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(size - tail.length, 'x'), tail]);
}

const routes: Array<[Listener, string, string]> = [
  ['public', 'POST', `/bitrix/rest/?CHANNEL_ID=${sender.token}`],
  ['public', 'POST', `/bitrix/sub/?CHANNEL_ID=${canary.token}`],
  ['public', 'PUT', `/bitrix/subws/?CHANNEL_ID=${canary.token}`],
  ['public', 'GET', `/bitrix/sub/?CHANNEL_ID=${canary.token}`],
  ['public', 'OPTIONS', '/bitrix/subws/'],
  ['public', 'POST', `/bitrix/pub/?CHANNEL_ID=${canary.priv}`],
  ['public', 'PUT', '/nowhere/'],
  ['internal', 'POST', `/bitrix/pub/?CHANNEL_ID=${canary.priv}`],
  ['internal', 'POST', '/bitrix/pub/?binaryMode=true'],
  ['internal', 'GET', `/bitrix/pub/?CHANNEL_ID=${canary.priv}`],
  ['internal', 'PUT', '/bitrix/pub/'],
  ['internal', 'GET', '/server-stat/'],
  ['internal', 'POST', '/server-stat/'],
  ['internal', 'POST', '/nowhere/'],
  ['admin', 'GET', '/metrics'],
  ['admin', 'POST', '/healthz'],
  ['admin', 'PUT', '/readyz'],
];

describe('an oversized body', () => {
  it('the canary sees a publish sent on its own to each listener (so it would see one handled behind a body)', async () => {
    for (const listener of ['public', 'internal'] as const) {
      const r = await exchange(ports[listener], [canaryPublish(listener, `alone-${listener}`), closing(listener)]);
      assert.match(r.text, /^HTTP\/1\.1 200 /);
      await eventually(`the canary gets alone-${listener}`, () => canaryWs.text().includes(`alone-${listener}`));
    }
  });

  it('a client that keeps sending its body and reads only afterwards still gets the 413 (the connection is not reset under it)', async () => {
    const heads: Record<Listener, string> = {
      public: `POST /bitrix/rest/?CHANNEL_ID=${sender.token}`,
      internal: `POST /bitrix/pub/?CHANNEL_ID=${canary.priv}`,
      admin: 'POST /metrics',
    };
    for (const listener of ['public', 'internal', 'admin'] as const) {
      for (let i = 0; i < 10; i++) {
        const answer = await new Promise<{ text: string; error?: string }>((resolve) => {
          const socket = connect(ports[listener], '127.0.0.1');
          const chunks: Buffer[] = [];
          let error: string | undefined;
          socket.pause();
          socket.on('data', (c) => chunks.push(c));
          socket.on('error', (err: NodeJS.ErrnoException) => {
            error ??= err.code ?? err.message;
          });
          socket.on('close', () => resolve({ text: Buffer.concat(chunks).toString('latin1'), ...(error === undefined ? {} : { error }) }));
          socket.write(`${heads[listener]} HTTP/1.1\r\nHost: x\r\nContent-Length: ${LIMIT * 256}\r\n\r\n`);
          // Like a client that sends the whole body before it looks at the answer (curl, PHP).
          const piece = Buffer.alloc(LIMIT, 'x');
          let sent = 0;
          const pump = setInterval(() => {
            if (socket.destroyed || ++sent > 40) return;
            socket.write(piece);
          }, 5);
          setTimeout(() => {
            clearInterval(pump);
            socket.resume();
          }, 250);
        });
        assert.match(answer.text, /^HTTP\/1\.1 413 /, `${listener}, attempt ${i}: ${answer.error ?? ''} ${answer.text.slice(0, 40)}`);
      }
    }
  });

  for (const [listener, method, path] of routes) {
    const label = path.replace(/CHANNEL_ID=[^&]*/, 'CHANNEL_ID');
    it(`${listener} ${method} ${label}: 413 and the connection closed, ${ITERATIONS} times, with or without Content-Length, after a keep-alive request or alone`, async () => {
      for (let i = 0; i < ITERATIONS; i++) {
        const tag = `${listener}-${method}-${label}-${i}`;
        const size = [LIMIT + 1, LIMIT * 2, LIMIT * 8][Math.floor(i / 2) % 3]!;
        const body = bodyEndingIn(size, canaryPublish(listener, `inbody-${tag}`));
        const withLength = i % 2 === 0;
        const head = Buffer.from(
          `${method} ${path} HTTP/1.1\r\nHost: x\r\n` + (withLength ? `Content-Length: ${body.length}\r\n` : 'Transfer-Encoding: chunked\r\n') + '\r\n',
        );
        const payload = withLength ? body : Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
        const behind = canaryPublish(listener, `behind-${tag}`);
        // 0: the oversized request first; 1: after a keep-alive answer; 2: all three in one go.
        const mode = Math.floor(i / 6) % 3;
        const parts = mode === 0 ? [head, payload, behind] : [Buffer.from(FIRST[listener][0]), head, payload, behind];
        const r = await exchange(ports[listener], parts, mode === 1 ? 1 : undefined);
        const answers = (r.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).map((s) => s.slice(9));
        assert.deepEqual(answers, mode === 0 ? ['413'] : [FIRST[listener][1], '413'], `attempt ${i} (mode ${mode}, ${withLength ? 'Content-Length' : 'chunked'}, ${size} B; closed ${r.closed}, error ${r.error ?? 'none'}): ${r.text.slice(0, 80)}`);
        assert.ok(r.closed, `attempt ${i}: the connection is closed`);
      }
      // Still serving on that listener, and nothing of the bodies or behind them reached the canary.
      const done = `done-${listener}-${method}-${label}`;
      if (listener !== 'admin') {
        assert.match((await exchange(ports[listener], [canaryPublish(listener, done), closing(listener)])).text, /^HTTP\/1\.1 200 /);
        await eventually(`the canary gets ${done}`, () => canaryWs.text().includes(done));
      }
      const prefix = `${listener}-${method}-${label}-`;
      const leaked = (canaryWs.text().match(/(inbody|behind)-[^"]+/g) ?? []).filter((m) => m.includes(prefix));
      assert.deepEqual(leaked, [], 'handled although it came in or behind a refused body');
    });
  }
});
