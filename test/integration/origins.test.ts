import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';

/**
 * security.allowedOrigins: pages of other sites cannot subscribe or send client
 * requests with a visitor's browser; portals listed, non-browser clients (no
 * Origin) and, with the list empty, everyone are served as before.
 */

const HELLO = '{"module_id":"t","command":"hello","params":{}}';

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, {
    security: { key: 'testkey', allowedOrigins: ['https://portal.example.com', 'https://*.corp.example'] },
    gateway: { longPollTimeoutMs: 1_000 },
  });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

function upgrade(token: string, origin?: string): Promise<string> {
  return rawRequest(
    t.port,
    `GET /bitrix/subws/?CHANNEL_ID=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      (origin === undefined ? '' : `Origin: ${origin}\r\n`) +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    500,
  );
}

function poll(token: string, origin?: string): Promise<string> {
  return rawRequest(
    t.port,
    `GET /bitrix/sub/?CHANNEL_ID=${token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n` + (origin === undefined ? '' : `Origin: ${origin}\r\n`) + '\r\n',
    3_000,
  );
}

describe('allowed origins', () => {
  it('a WebSocket upgrade from another site is refused with 403 before the handshake; listed origins and clients without Origin are upgraded', async () => {
    const user = newUser();
    assert.match(await upgrade(user.token, 'https://evil.example'), /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(await upgrade(user.token, 'https://portal.example.com.evil.example'), /^HTTP\/1\.1 403 /);
    assert.match(await upgrade(user.token, 'null'), /^HTTP\/1\.1 403 /);
    assert.match(await upgrade(user.token, 'https://portal.example.com'), /^HTTP\/1\.1 101 /);
    assert.match(await upgrade(user.token, 'https://PORTAL.example.com'), /^HTTP\/1\.1 101 /);
    assert.match(await upgrade(user.token, 'https://team.corp.example'), /^HTTP\/1\.1 101 /);
    assert.match(await upgrade(user.token, 'https://corp.example'), /^HTTP\/1\.1 403 /);
    assert.match(await upgrade(user.token), /^HTTP\/1\.1 101 /);
  });

  it('a long poll from another site is answered 403; a listed origin gets its message', async () => {
    const user = newUser();
    assert.match(await poll(user.token, 'http://portal.example.com'), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*origin not allowed$/);
    const held = poll(user.token, 'https://portal.example.com');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await publishText(t.base, user.priv, HELLO, 60)).status, 200);
    assert.match(await held, /^HTTP\/1\.1 200 OK\r\n[\s\S]*"command":"hello"/);
  });

  it('a client request from another site is refused without reading its body, and the connection is closed', async () => {
    const user = newUser();
    const body = Buffer.alloc(64 * 1024, 1).toString('latin1');
    const answer = await rawRequest(
      t.port,
      `POST /bitrix/rest/?CHANNEL_ID=${user.token} HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
        'GET /server-stat/ HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, 'nothing after the 403 was taken as a request');
  });
});
