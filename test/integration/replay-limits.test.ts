import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser } from '../helpers/channels.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { within } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * A client that slept through more than its connection's outbox can hold: the replay
 * moves on page by page (each one frame well under the outbox) instead of being closed
 * as a slow client and handed the same page again for ever.
 */

const OUTBOX_BYTES = 64 * 1024;
const BODY_BYTES = 8 * 1024;
const COUNT = 30;

let nats: TestNats;
let t: TestApp;
let nc: NatsConnection;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { limits: { maxPayloadBytes: 16 * 1024 }, gateway: { maxOutboxBytes: OUTBOX_BYTES, longPollTimeoutMs: 1_000 } });
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await t?.stop();
  await nats?.stop();
});

async function publishMany(channel: string): Promise<string[]> {
  const mids: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    const text = JSON.stringify({ module_id: 't', command: 'm', params: { n: i, pad: 'x'.repeat(BODY_BYTES) } });
    const reply = (await nc.request('push.publish', JSON.stringify({ channels: [channel], body: text, expiry: 3600 }), { timeout: 5_000 })).json<{ mids: string[] }>();
    mids.push(reply.mids[0]!);
  }
  return mids;
}

describe('replay larger than the outbox', () => {
  it('a WebSocket gets it in pages under the outbox, each closed with 1013, and resumes to the end', async () => {
    const user = newUser();
    const [start] = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: '{"n":-1}', expiry: 3600 }), { timeout: 5_000 })).json<{ mids: string[] }>().mids;
    const mids = await publishMany(user.priv);
    const got: string[] = [];
    const closes: number[] = [];
    let mid = start!;
    for (let attempt = 0; got.length < COUNT && attempt < COUNT; attempt++) {
      const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${mid}`);
      const closed = await within('the page to end', ws.closed, 10_000).catch(() => undefined);
      for (const f of parseTextFrames(ws.text())) {
        got.push(f.mid);
        mid = f.mid;
      }
      if (closed === undefined) ws.close();
      else closes.push(closed.code);
      if (closed === undefined) break;
    }
    assert.deepEqual(got, mids, 'every message once, in order');
    assert.ok(!closes.includes(4008), `never closed as a slow client (closes: ${closes.join(', ')})`);
    for (const f of closes) assert.equal(f, 1013);
  });

  it('a long poll gets it in pages under the outbox and resumes from each page end', async () => {
    const user = newUser();
    const [start] = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: '{"n":-1}', expiry: 3600 }), { timeout: 5_000 })).json<{ mids: string[] }>().mids;
    const mids = await publishMany(user.priv);
    const got: string[] = [];
    let mid = start!;
    for (let poll = 0; got.length < COUNT && poll < COUNT; poll++) {
      const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result;
      assert.equal(res.status, 200, `poll ${poll} answered ${res.status}`);
      assert.ok(res.body.length < OUTBOX_BYTES, `a page of ${res.body.length} bytes`);
      for (const f of parseTextFrames(res.body.toString())) {
        got.push(f.mid);
        mid = f.mid;
      }
    }
    assert.deepEqual(got, mids);
  });
});
