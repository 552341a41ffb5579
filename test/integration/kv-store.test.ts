import assert from 'node:assert/strict';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { after, before, describe, it } from 'node:test';
import { KvStore } from '../../src/nats/kv-store.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';

/** KvStore against a real bucket: what `/server-stat/` and presence rely on. */

let nats: TestNats;
let nc: NatsConnection;

before(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  await new Kvm(nc).create('KV_STORE_TEST', { ttl: 60_000 });
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

describe('KvStore', () => {
  it('an empty bucket has no keys', async () => {
    const kv = await KvStore.open(nc, 'KV_STORE_TEST');
    assert.deepEqual(await kv.keys(), []);
  });

  it('lists every written key once, dotted and slashed ones as written; a deleted key is listed and reads as absent', async () => {
    const kv = await KvStore.open(nc, 'KV_STORE_TEST');
    await kv.put('worker-1', 'a');
    await kv.put('host.example/9', 'b');
    await kv.put('worker-1', 'c');
    await kv.put('gone', 'd');
    await kv.delete('gone');
    assert.deepEqual((await kv.keys()).sort(), ['gone', 'host.example/9', 'worker-1']);
    assert.equal((await kv.get('worker-1'))?.value, 'c');
    assert.equal(await kv.get('gone'), null);
  });
});
