import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';

/**
 * An idempotency key makes a retry of the same publish store once; the same key with
 * another message is refused (it was never stored, so a 200 would be a lie).
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

const body = (n: string): string => `{"module_id":"t","command":"m","params":{"n":"${n}"}}`;

async function replayed(token: string, mid: string): Promise<string[]> {
  const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}&mid=${mid}`).result;
  return parseTextFrames(res.body.toString()).map((f) => (f.text as { params: { n: string } }).params.n);
}

describe('idempotency keys', () => {
  it('HTTP: a retry of the same message stores it once; the same key with another message is 409 and stores nothing', async () => {
    const user = newUser();
    const startReply = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: body('start'), expiry: 3600 }), { timeout: 5_000 })).json<{ mids: string[] }>();
    const key = randomUUID();
    assert.equal((await publishText(t.base, user.priv, body('a'), 3600, { 'Idempotency-Key': key })).status, 200);
    assert.equal((await publishText(t.base, user.priv, body('a'), 3600, { 'Idempotency-Key': key })).status, 200);
    const other = await publishText(t.base, user.priv, body('b'), 3600, { 'Idempotency-Key': key });
    assert.equal(other.status, 409);
    assert.match(await other.text(), /Idempotency-Key/);
    const toOther = await publishText(t.base, newUser().priv, body('a'), 3600, { 'Idempotency-Key': key });
    assert.equal(toOther.status, 409, 'the same body to other receivers is another message');
    assert.deepEqual(await replayed(user.token, startReply.mids[0]!), ['a']);
  });

  it('NATS: the same id with another body is refused with a permanent error', async () => {
    const user = newUser();
    const id = randomUUID();
    const first = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: body('a'), expiry: 3600, id }), { timeout: 5_000 })).json<{ mids: string[] }>();
    const retry = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: body('a'), expiry: 3600, id }), { timeout: 5_000 })).json<{ mids: string[] }>();
    assert.deepEqual(retry.mids, first.mids, 'a retry answers the stored mids');
    const other = (await nc.request('push.publish', JSON.stringify({ channels: [user.priv], body: body('b'), expiry: 3600, id }), { timeout: 5_000 })).json<{ error?: { code: string; temporary: boolean } }>();
    assert.equal(other.error?.code, 'PUSH_ERR_IDEMPOTENCY_CONFLICT');
    assert.equal(other.error?.temporary, false);
  });
});
