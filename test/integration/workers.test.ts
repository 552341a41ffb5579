import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newShared } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { openWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { spawnJetpull, type JetpullProcess } from '../helpers/process.ts';
import { eventually } from '../helpers/wait.ts';

/** PUSH_WORKERS=n: one command, n full jetpull processes sharing the listening port. */

let nats: TestNats;
let jp: JetpullProcess;
before(async () => {
  nats = await startTestNats();
  jp = await spawnJetpull(nats.url, { PUSH_WORKERS: '2', PUSH_PROCESS_UNIQUE_ID: 'multi', PUSH_GATEWAY__DRAIN_WINDOW_MS: '500' });
});
after(async () => {
  await jp?.stop();
  await nats?.stop();
});

describe('workers', () => {
  it('two workers share the port, both serve clients and publishes, and both appear in /server-stat/', async () => {
    await eventually('both workers in /server-stat/', async () => {
      const stats = (await (await fetch(`${jp.base}/server-stat/`)).json()) as Array<{ processUniqueId: string; pid: number }>;
      const ids = stats.map((s) => s.processUniqueId).sort();
      return ids.join() === 'multi-w0,multi-w1' && new Set(stats.map((s) => s.pid)).size === 2;
    }, 15_000, 200);
    const shared = newShared();
    const clients = await Promise.all(Array.from({ length: 20 }, () => openWs(`${jp.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`)));
    assert.equal((await publishText(jp.base, shared.id, '{"module_id":"t","command":"c","params":{}}', 60)).status, 200);
    for (const c of clients) await c.waitFrames(1);
    const stats = (await (await fetch(`${jp.base}/server-stat/`)).json()) as Array<{ websockets: number }>;
    await eventually('connections spread over both workers', async () => {
      const s = (await (await fetch(`${jp.base}/server-stat/`)).json()) as Array<{ websockets: number }>;
      return s.length === 2 && s.every((w) => w.websockets > 0) && s.reduce((a, w) => a + w.websockets, 0) === 20;
    }, 10_000, 200);
    assert.equal(stats.length, 2);
    for (const c of clients) c.close();
  });

  it('SIGTERM stops every worker and the command exits 0', async () => {
    jp.kill('SIGTERM');
    assert.equal(await jp.exited, 0);
    assert.ok(jp.logs.some((l) => l.msg === 'workers started'));
  });
});
