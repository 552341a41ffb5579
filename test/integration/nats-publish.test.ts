import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs } from '../helpers/ws-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/** Native publishing over NATS request/reply (`push.publish`). */

let nats: TestNats;
let t: TestApp;
let nc: NatsConnection;

interface Outcome {
  mids?: string[];
  error?: { code: string; message: string; temporary: boolean };
}

async function request(payload: unknown): Promise<Outcome & { results?: Outcome[] }> {
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return (await nc.request('push.publish', data, { timeout: 5_000 })).json();
}

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

describe('nats publish api', () => {
  it('stores and delivers, replying with one mid per receiver once acknowledged', async () => {
    const user = newUser();
    const shared = newShared();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    const reply = await request({ channels: [user.priv, shared.id], body: { module_id: 'im', command: 'message', params: { x: 1 } }, expiry: 60 });
    assert.equal(reply.mids?.length, 2);
    for (const mid of reply.mids!) assert.match(mid, /^\d{26}$/);
    await eventually('the message', () => parseTextFrames(ws.text()).length === 1);
    const [frame] = parseTextFrames(ws.text());
    assert.deepEqual(frame!.text, { module_id: 'im', command: 'message', params: { x: 1 } });
    assert.equal(frame!.mid, reply.mids![0], 'a connection on both receivers gets the first copy, once');
    ws.close();
  });

  it('addresses public ids directly and through signed priv:pub tokens', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const direct = await request({ channels: [{ id: user.pub, isPrivate: false }], body: '{"n":1}', expiry: 0 });
    assert.equal(direct.mids?.length, 1);
    const viaToken = await request({ channels: [user.token], body: '{"n":2}' });
    assert.equal(viaToken.mids?.length, 2, 'priv:pub.sig addresses both ids');
    await eventually('both messages', () => parseTextFrames(ws.text()).length === 2);
    ws.close();
  });

  it('the same id is stored once', async () => {
    const user = newUser();
    const a = await request({ channels: [user.priv], body: '{"once":true}', expiry: 60, id: 'order-42' });
    const b = await request({ channels: [user.priv], body: '{"once":true}', expiry: 60, id: 'order-42' });
    assert.deepEqual(a.mids, b.mids);
  });

  it('answers structured errors for invalid requests', async () => {
    const user = newUser();
    const cases: unknown[] = [
      'not json',
      {},
      { channels: [], body: 'x' },
      { channels: [user.priv], body: '' },
      { channels: ['zzz'], body: 'x' },
      { channels: [user.priv], body: 'x', expiry: -1 },
      { channels: [user.priv], body: 'x', extra: 1 },
      { channels: Array.from({ length: 101 }, () => newUser().priv), body: 'x' },
    ];
    for (const c of cases) {
      const reply = await request(c);
      assert.equal(reply.mids, undefined, JSON.stringify(c).slice(0, 80));
      assert.equal(reply.error?.code, 'PUSH_ERR_BAD_REQUEST', JSON.stringify(c).slice(0, 80));
      assert.equal(reply.error?.temporary, false);
      assert.ok(reply.error!.message.length > 0);
    }
  });
});

describe('nats publish api, batches', () => {
  it('stores every message of a batch, answering one result per message in order; ids make a repeated batch store once', async () => {
    const users = [newUser(), newUser(), newUser()];
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${users[0]!.token}`);
    const batch = {
      messages: [
        { channels: [users[0]!.priv], body: { module_id: 'im', command: 'first' }, expiry: 60, id: 'batch-a' },
        { channels: [users[1]!.priv, users[2]!.priv], body: '{"command":"second"}', expiry: 60 },
        { channels: [users[0]!.priv], body: { module_id: 'im', command: 'third' }, id: 'batch-c' },
      ],
    };
    const reply = await request(batch);
    assert.equal(reply.results?.length, 3, JSON.stringify(reply));
    assert.deepEqual(reply.results!.map((r) => r.mids?.length), [1, 2, 1]);
    for (const r of reply.results!) for (const mid of r.mids!) assert.match(mid, /^\d{26}$/);
    await eventually('both messages to the first user', () => parseTextFrames(ws.text()).length === 2);
    assert.deepEqual(parseTextFrames(ws.text()).map((f) => [(f.text as { command: string }).command, f.mid]).sort(), [
      ['first', reply.results![0]!.mids![0]],
      ['third', reply.results![2]!.mids![0]],
    ]);
    const again = await request({ messages: [batch.messages[0], batch.messages[2]] });
    assert.deepEqual(again.results, [reply.results![0], reply.results![2]], 'the same ids answer the stored mids');
    ws.close();
  });

  it('answers each message on its own: a conflicting id fails that message only', async () => {
    const user = newUser();
    const first = await request({ channels: [user.priv], body: 'one', id: 'batch-conflict' });
    assert.equal(first.mids?.length, 1);
    const reply = await request({ messages: [{ channels: [user.priv], body: 'other', id: 'batch-conflict' }, { channels: [user.priv], body: 'two' }] });
    assert.equal(reply.results?.[0]?.error?.code, 'PUSH_ERR_IDEMPOTENCY_CONFLICT', JSON.stringify(reply));
    assert.equal(reply.results?.[0]?.error?.temporary, false);
    assert.equal(reply.results?.[1]?.mids?.length, 1);
  });

  it('refuses a batch with an invalid message whole, storing none of it', async () => {
    const user = newUser();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    const cases: unknown[] = [
      { messages: [{ channels: [user.priv], body: '{"command":"refused"}' }, { channels: ['zzz'], body: 'x' }] },
      { messages: [{ channels: [user.priv], body: '{"command":"refused"}' }, { channels: [user.priv], body: '' }] },
      { messages: [{ channels: [user.priv], body: '{"command":"refused"}' }, 'not an envelope'] },
      { messages: [] },
      { messages: Array.from({ length: 101 }, () => ({ channels: [user.priv], body: '{"command":"refused"}' })) },
      { messages: [{ channels: [user.priv], body: '{"command":"refused"}' }], channels: [user.priv] },
      { messages: 'x' },
    ];
    for (const c of cases) {
      const reply = await request(c);
      const what = JSON.stringify(c).slice(0, 120);
      assert.equal(reply.results, undefined, what);
      assert.equal(reply.error?.code, 'PUSH_ERR_BAD_REQUEST', what);
      assert.equal(reply.error?.temporary, false, what);
    }
    assert.match((await request(cases[0])).error!.message, /^messages\[1\]: /);
    // A message published after the refused batches arrives alone.
    assert.equal((await request({ channels: [user.priv], body: '{"command":"after"}' })).mids?.length, 1);
    await eventually('the message after', () => parseTextFrames(ws.text()).length >= 1);
    assert.deepEqual(parseTextFrames(ws.text()).map((f) => (f.text as { command: string }).command), ['after']);
    ws.close();
  });
});
