import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';

/**
 * A body over limits.maxPayloadBytes on any route ends the same way every time: 413,
 * and the connection is closed, so the rest of the body is never read as a request.
 */

const LIMIT = 16 * 1024;
let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { limits: { maxPayloadBytes: LIMIT } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

/** Sends the request (head, then the body in pieces) and reads until the server closes or 3 s pass. */
function exchange(head: string, body: Buffer): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(t.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const done = (): void => resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, 3_000);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      done();
    });
    socket.write(head);
    // The tail of the body looks like a request of its own: it must never be answered.
    for (let i = 0; i < body.length; i += 4096) socket.write(body.subarray(i, i + 4096));
  });
}

const TAIL = Buffer.from('GET /server-stat/ HTTP/1.1\r\nHost: x\r\n\r\n');
/** A body of `size` bytes whose end is a request of its own. */
const smuggled = (size: number): Buffer => Buffer.concat([Buffer.alloc(size - TAIL.length, 'x'), TAIL]);

const user = newUser();
const routes = [
  ['POST /bitrix/pub/?CHANNEL_ID=' + user.priv, 'text publish'],
  ['POST /bitrix/pub/?binaryMode=true', 'protobuf publish'],
  ['POST /bitrix/rest/?CHANNEL_ID=' + user.token, 'client request'],
] as const;

describe('an oversized body', () => {
  for (const [line, what] of routes) {
    it(`${what}: 413 and the connection closed, every time, with or without Content-Length`, async () => {
      for (let i = 0; i < 40; i++) {
        const body = smuggled(i % 4 < 2 ? LIMIT + 1 : LIMIT * 2);
        const withLength = i % 2 === 0;
        const head =
          `${line.replace(' /', ' /')} HTTP/1.1\r\nHost: x\r\n` +
          (withLength ? `Content-Length: ${body.length}\r\n` : 'Transfer-Encoding: chunked\r\n') +
          '\r\n';
        const payload = withLength ? body : Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
        const r = await exchange(head, payload);
        assert.match(r.text, /^HTTP\/1\.1 413 /, `attempt ${i}: ${r.text.slice(0, 60)}`);
        assert.equal((r.text.match(/HTTP\/1\.1 /g) ?? []).length, 1, `attempt ${i}: one answer only`);
        assert.ok(r.closed, `attempt ${i}: the connection is closed`);
      }
    });
  }
});
