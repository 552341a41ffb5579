import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Live delivery does not rely on luck: a gateway that loses its NATS connection
 * keeps its clients, and once back it delivers every message stored meanwhile, read
 * from the stream from the last sequence it saw, in order, exactly once.
 */

let nats: TestNats;
let proxy: TcpProxy;
let gateway: TestApp;
let publisher: TestApp;

const n = (c: TestWs): unknown[] => parseTextFrames(c.text()).map((f) => (f.text as { params: { n: unknown } }).params.n);
const body = (i: unknown): string => `{"module_id":"t","command":"m","params":{"n":${JSON.stringify(i)}}}`;

before(async () => {
  nats = await startTestNats();
  proxy = await TcpProxy.start(nats.port);
  gateway = await startTestApp(proxy.url, { role: 'gateway', gateway: { coalesceWindowMs: 0 } });
  publisher = await startTestApp(nats.url, { role: 'publisher' });
});
after(async () => {
  await publisher?.stop();
  await gateway?.stop();
  await proxy?.close();
  await nats?.stop();
});

describe('catch-up after a lost NATS connection', () => {
  it('a gateway cut off from NATS keeps its clients and delivers what was published meanwhile, once and in order', async () => {
    const user = newUser();
    const shared = newShared();
    const quiet = newUser();
    const both = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    const onlyShared = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`);
    const idle = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${quiet.token}`);
    await publishText(publisher.base, user.priv, body('before'), 0);
    await eventually('the first message', () => n(both).length === 1);

    proxy.cut();
    await eventually('the gateway to notice', () => gateway.logs.find('nats disconnected').length > 0);
    // Stored while the gateway cannot hear the live subjects; live-only messages too.
    await publishText(publisher.base, user.priv, body(1), 60);
    await publishText(publisher.base, shared.id, body(2), 0);
    await publishText(publisher.base, `${user.priv}/${shared.id}`, body(3), 60);
    proxy.restore();

    await eventually('the caught-up messages', () => n(both).length >= 4 && n(onlyShared).length >= 2, 15_000);
    await eventually('a catch-up log line', () => gateway.logs.find('caught up').length > 0);
    await publishText(publisher.base, user.priv, body('after'), 0);
    await eventually('live delivery again', () => n(both).includes('after'), 5_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(n(both), ['before', 1, 2, 3, 'after']);
    assert.deepEqual(n(onlyShared), [2, 3]);
    assert.equal(n(idle).length, 0);
    for (const c of [both, onlyShared, idle]) {
      assert.equal(c.ws.readyState, c.ws.OPEN, 'clients kept their connections');
      c.close();
    }
  });
});
