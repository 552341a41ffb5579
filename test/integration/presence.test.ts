import assert from 'node:assert/strict';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { after, before, describe, it } from 'node:test';
import { createRootLogger } from '../../src/log/logger.ts';
import { KvStore } from '../../src/nats/kv-store.ts';
import { Presence } from '../../src/presence/presence.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser } from '../helpers/channels.ts';
import { LogSink } from '../helpers/log-sink.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';

/**
 * Presence at scale: a ping round is spread over the ping interval, and presence
 * writes are bounded in flight, so 50,000 pongs never become 50,000 KV writes at once.
 */

let nats: TestNats;
let nc: NatsConnection;

before(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

describe('presence writes', () => {
  it('keeps at most presenceWritesInFlight puts outstanding, writes every channel once per refresh, and drains its queue', async () => {
    await new Kvm(nc).create('PRESENCE_TEST');
    const real = await KvStore.open(nc, 'PRESENCE_TEST');
    let inFlight = 0;
    let most = 0;
    let puts = 0;
    const counting = {
      put: async (key: string, value: string) => {
        inFlight++;
        puts++;
        most = Math.max(most, inFlight);
        try {
          await real.put(key, value);
        } finally {
          inFlight--;
        }
      },
      get: (key: string) => real.get(key),
    } as unknown as KvStore;
    const presence = new Presence(counting, 130_000, 30_000, 'host/test', createRootLogger({ level: 'silent', processUniqueId: 't', version: 't' }, new LogSink()), 4);
    const keys = Array.from({ length: 500 }, (_, i) => `priv.${i.toString(16).padStart(32, '0')}`);
    // A ping round's pongs: every connection touches its channels in one burst, the shared one by all.
    for (const key of keys) presence.touch([key, 'priv.shared']);
    assert.ok(presence.backlog > 400, 'the burst waits in the queue');
    await eventually('queue drained', () => presence.backlog === 0 && inFlight === 0, 10_000);
    assert.equal(most, 4);
    assert.equal(puts, 501, 'one write per channel');
    for (const key of keys) presence.touch([key]);
    assert.equal(presence.backlog, 0, 'no rewrite within the refresh interval');
    assert.deepEqual(await presence.online([keys[0]!, keys[499]!, 'priv.shared', 'priv.never']), [true, true, true, false]);
  });
});

describe('ping rounds', () => {
  let t: TestApp;
  const clients: TestWs[] = [];
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { pingIntervalMs: 2_000 } });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await t?.stop();
  });

  it('pings each connection once per interval, the round spread over the interval instead of at one instant', async () => {
    const firstPing = new Map<number, number>();
    const pings = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      const c = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`);
      c.ws.on('ping', () => {
        pings.set(i, (pings.get(i) ?? 0) + 1);
        if (!firstPing.has(i)) firstPing.set(i, Date.now());
      });
      clients.push(c);
    }
    await eventually('every connection pinged', () => firstPing.size === 100, 6_000);
    const times = [...firstPing.values()];
    const spread = Math.max(...times) - Math.min(...times);
    // Twenty slices of 100 ms: one round covers most of the 2 s interval.
    assert.ok(spread >= 1_000, `first pings spread over ${spread} ms`);
    const counts = [...pings.values()];
    await new Promise((r) => setTimeout(r, 2_100));
    assert.ok([...pings.values()].every((n, i) => n - (counts[i] ?? 0) <= 2), 'about one ping per connection per interval');
    assert.ok(clients.every((c) => c.ws.readyState === c.ws.OPEN), 'answering connections stay open');
  });
});
