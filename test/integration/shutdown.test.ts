import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { spawnJetpull } from '../helpers/process.ts';
import { SilentWsClient } from '../helpers/silent-ws-client.ts';
import { within } from '../helpers/wait.ts';

/**
 * SIGTERM ends the process within the drain window even when clients never answer
 * the close handshake (upgraded sockets are not the HTTP server's to close).
 */

const DRAIN_MS = 1_000;
let nats: TestNats;

before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats?.stop();
});

describe('shutdown', () => {
  it('exits 0 within the drain window although WebSocket clients never answer the close', async () => {
    const gw = await spawnJetpull(nats.url, { PUSH_GATEWAY__DRAIN_WINDOW_MS: String(DRAIN_MS) });
    const clients = await Promise.all(Array.from({ length: 3 }, () => SilentWsClient.open(`${gw.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`)));
    try {
      const started = Date.now();
      gw.kill('SIGTERM');
      const code = await within('the process to exit', gw.exited, 20_000);
      const tookMs = Date.now() - started;
      assert.equal(code, 0, JSON.stringify(gw.logs.slice(-5)));
      assert.ok(tookMs < DRAIN_MS + 3_000, `exited after ${tookMs} ms`);
      assert.ok(clients.every((c) => c.closed), 'every socket was dropped');
    } finally {
      for (const c of clients) c.destroy();
      gw.kill('SIGKILL');
    }
  });
});
