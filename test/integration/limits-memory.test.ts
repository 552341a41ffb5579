import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually, within } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * The limits that guard the memory of the whole process: the memory watermark (RSS)
 * and the bytes queued for all WebSockets together.
 */

const MiB = 1_048_576;
const MSG = (n: number): string => `{"module_id":"t","command":"c","params":{"n":${n}}}`;

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(() => nats?.stop());

const adminGet = async (t: TestApp, path: string): Promise<{ status: number; text: string }> => {
  const res = await fetch(`http://127.0.0.1:${t.app.adminAddress!.port}${path}`);
  return { status: res.status, text: await res.text() };
};

const metric = async (t: TestApp, series: RegExp): Promise<number> => {
  const m = new RegExp(`^${series.source} (\\d+)`, 'm').exec((await adminGet(t, '/metrics')).text);
  return m === null ? 0 : Number(m[1]);
};

const upgrade = (t: TestApp, token: string): Promise<string> =>
  rawRequest(
    t.port,
    `GET /bitrix/subws/?CHANNEL_ID=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    500,
  );

describe('memory watermark (gateway.memoryWatermarkBytes)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { longPollTimeoutMs: 30_000 } });
  });
  after(() => t.stop());

  it('above it /readyz fails and new connections get 503 while the open ones get their messages; back below 90 % of it all is as before; each crossing is logged once', async () => {
    assert.equal((await adminGet(t, '/readyz')).status, 200);
    const user = newUser();
    const pollUser = newUser();
    const held = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const heldPoll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${pollUser.token}`);
    await eventually('the poll held', () => t.app.gateway!.stats().pollings === 1);

    t.app.gateway!.memory.setWatermark(1);
    const notReady = await adminGet(t, '/readyz');
    assert.equal(notReady.status, 503);
    assert.match(notReady.text, /memory above the watermark/);
    const refused = await upgrade(t, newUser().token);
    assert.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(refused, /\r\nRetry-After: \d+\r\n/);
    const refusedPoll = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${newUser().token}`).result;
    assert.equal(refusedPoll.status, 503);
    assert.ok(Number(refusedPoll.headers.get('retry-after')) > 0);

    await publishText(t.base, user.priv, MSG(1), 60);
    await publishText(t.base, pollUser.priv, MSG(2), 60);
    assert.equal((parseTextFrames((await held.waitFrames(1))[0]!.data.toString())[0]!.text as { params: { n: number } }).params.n, 1);
    assert.equal((await heldPoll.result).status, 200);
    assert.equal(await metric(t, /jetpull_memory_above_watermark\{[^}]*\}/), 1);
    assert.ok((await metric(t, /jetpull_admission_rejections_total\{[^}]*reason="memory"[^}]*\}/)) >= 2);

    // Sampled every second: still above, and not logged again.
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal(t.logs.find('memory above the watermark, refusing new connections').length, 1);

    // Just above what is in use now: inside the hysteresis band, still refusing.
    t.app.gateway!.memory.setWatermark(Math.ceil(process.memoryUsage.rss() * 1.05));
    assert.equal((await adminGet(t, '/readyz')).status, 503);
    assert.match(await upgrade(t, newUser().token), /^HTTP\/1\.1 503 /);

    t.app.gateway!.memory.setWatermark(process.memoryUsage.rss() * 4);
    assert.equal((await adminGet(t, '/readyz')).status, 200);
    const next = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`);
    assert.equal(t.logs.find('memory back below the watermark, taking new connections').length, 1);
    assert.equal(t.logs.find('memory above the watermark, refusing new connections').length, 1);
    assert.equal(await metric(t, /jetpull_memory_above_watermark\{[^}]*\}/), 0);
    held.close();
    next.close();
  });
});

describe('queued bytes per process (gateway.maxOutboundBytes)', () => {
  let t: TestApp;
  before(async () => {
    // Each connection may queue 64 MiB; all of them together 12 MiB.
    t = await startTestApp(nats.url, { gateway: { maxOutboundBytes: 12 * MiB, maxOutboxBytes: 64 * MiB, coalesceWindowMs: 0 } });
  });
  after(() => t.stop());

  it('past it the connections with the largest queues are closed as slow until the rest fit; a smaller queue and a reader keep everything', async () => {
    const [big, small, quick] = [newUser(), newUser(), newUser()];
    const url = (u: (typeof big)): string => `${t.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}`;
    const a = await openWs(url(big));
    const b = await openWs(url(small));
    const c = await openWs(url(quick));
    // Two clients that stop reading; the kernel's buffers take a few MiB each, the rest queues in the gateway.
    a.ws.pause();
    b.ws.pause();
    const body = (n: number): string => `{"module_id":"t","command":"c","params":{"n":${n},"pad":"${'x'.repeat(512 * 1024)}"}}`;
    // Four times as much for `big` as for `small`, interleaved: whenever the sum passes
    // the limit, `big` has the largest queue. `small` gets 10 MiB in all, under the limit alone.
    for (let round = 0; round < 20; round++) {
      assert.equal((await publishText(t.base, small.priv, body(round), 60)).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await publishText(t.base, big.priv, body(round * 4 + i), 60)).status, 200);
      if (round % 5 === 0) await publishText(t.base, quick.priv, MSG(round), 60);
    }
    await eventually('the largest queue closed', () => t.logs.find('slow client disconnected').length > 0, 10_000);
    const slow = t.logs.find('slow client disconnected');
    assert.deepEqual(slow.map((l) => l.limit), ['process']);
    assert.ok(t.logs.find('outbound buffer limit reached, closing the slowest connections').length >= 1);

    b.ws.resume();
    const frames = await b.waitFrames(20, 20_000);
    assert.deepEqual(
      frames.flatMap((f) => parseTextFrames(f.data.toString())).map((m) => (m.text as { params: { n: number } }).params.n),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(parseTextFrames(c.text()).length, 4);
    a.ws.resume();
    const closed = await within('the closed client sees its socket end', a.closed, 10_000);
    assert.ok(closed.code === 4008 || closed.code === 1006, String(closed.code));

    // The others are still connected and served.
    await publishText(t.base, small.priv, MSG(100), 60);
    await publishText(t.base, quick.priv, MSG(101), 60);
    await b.waitFrames(21);
    await c.waitFrames(5);
    assert.equal(t.app.gateway!.stats().websockets, 2);
    assert.equal(await metric(t, /jetpull_slow_client_disconnects_total\{[^}]*limit="process"[^}]*\}/), 1);
    b.close();
    c.close();
  });
});
