import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newId, newShared, newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * gateway.liveSubscription 'all': one subscription to every channel's republished
 * messages instead of one per channel. Each connection still gets exactly its own
 * channels' messages, live and after a reconnect with its mid.
 */

let nats: TestNats;
let t: TestApp;

const body = (i: number | string): string => `{"module_id":"t","command":"m","params":{"n":${JSON.stringify(i)}}}`;
const ns = (text: string): unknown[] => parseTextFrames(text).map((f) => (f.text as { params: { n: unknown } }).params.n);

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { gateway: { liveSubscription: 'all' } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

describe("live subscription 'all'", () => {
  it('delivers each connection its own channels only, and a reconnect with its mid gets what it missed', async () => {
    const [a, b] = [newUser(), newUser()];
    const shared = newShared();
    const wsA = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${a.token}/${shared.token}`);
    const wsB = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${b.token}`);
    await publishText(t.base, newId(), body('nobody'), 3600);
    await publishText(t.base, a.priv, body('a1'), 3600);
    await publishText(t.base, b.priv, body('b1'), 3600);
    await publishText(t.base, shared.id, body('s1'), 3600);
    await eventually('both delivered', () => ns(wsA.text()).length >= 2 && ns(wsB.text()).length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(ns(wsA.text()), ['a1', 's1']);
    assert.deepEqual(ns(wsB.text()), ['b1']);

    const mid = parseTextFrames(wsA.text()).at(-1)!.mid;
    wsA.close();
    await publishText(t.base, a.priv, body('a2'), 3600);
    await publishText(t.base, b.priv, body('b2'), 3600);
    await publishText(t.base, shared.id, body('s2'), 3600);
    const back = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${a.token}/${shared.token}&mid=${mid}`);
    await eventually('the replay', () => ns(back.text()).length >= 2);
    await publishText(t.base, a.priv, body('a3'), 3600);
    await eventually('live after the replay', () => ns(back.text()).length >= 3);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(ns(back.text()), ['a2', 's2', 'a3']);
    await eventually('b live', () => ns(wsB.text()).length >= 2);
    assert.deepEqual(ns(wsB.text()), ['b1', 'b2']);
    back.close();
    wsB.close();
  });
});
