import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually, within } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';
import { parseMid } from '../../src/wire/mid.ts';

/**
 * The message stream deleted under running processes (a lost volume, an operator):
 * the process re-creates it, starts a new epoch of mids, and its clients resume in the
 * new epoch instead of being handed old-epoch mids that go backwards.
 */

let nats: TestNats;
let t: TestApp;
let nc: NatsConnection;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url);
  nc = await connect({ servers: nats.url });
});
after(async () => {
  await nc?.close();
  await t?.stop();
  await nats?.stop();
});

async function publish(channel: string, n: number): Promise<{ mids?: string[]; error?: { code: string } }> {
  const body = JSON.stringify({ module_id: 't', command: 'm', params: { n } });
  return (await nc.request('push.publish', JSON.stringify({ channels: [channel], body, expiry: 3600 }), { timeout: 10_000 })).json();
}

describe('the message stream recreated under a running process', () => {
  it('is re-created, mids move to a new epoch, and clients resume in it with nothing lost after the change', async () => {
    const user = newUser();
    const before = await publish(user.priv, 1);
    const oldMid = before.mids![0]!;
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${oldMid}`);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete('PUSH_MESSAGES');
    // The running process re-creates the stream by itself and publishing works again.
    const after = await eventually('publishing to work again', async () => {
      const r = await publish(user.priv, 2);
      return r.mids ? r : undefined;
    }, 20_000, 250);
    const created = Math.floor(Date.parse((await jsm.streams.info('PUSH_MESSAGES')).created) / 1000);
    assert.equal(parseMid(after.mids![0]!)!.epoch, created, 'new mids carry the new stream epoch');
    assert.ok(after.mids![0]! > oldMid, 'mids keep increasing across the change');
    // The client is told to come back; with its old-epoch mid it replays the new epoch from the start.
    const closed = await within('the client to be told to reconnect', ws.closed, 10_000);
    assert.equal(closed.code, 1012);
    const again = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${oldMid}`);
    const third = await publish(user.priv, 3);
    await eventually('the new epoch messages', () => parseTextFrames(again.text()).length >= 2, 10_000);
    assert.deepEqual(parseTextFrames(again.text()).map((f) => f.mid), [after.mids![0], third.mids![0]]);
    again.close();
  });
});
