import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { declarations } from '../../streams/index.ts';
import type { StreamSpec } from '../../streams/schema.ts';
import { ensureStream, StreamDriftError } from '../../src/nats/ensure-streams.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';

/** streams/ is applied idempotently: create, update what can change, refuse what cannot. */

const log = pino({ level: 'silent' });
let nats: TestNats;
let nc: NatsConnection;
let jsm: JetStreamManager;

const PARAMS = { messageTtlSec: 86_400, duplicateWindowMs: 120_000, replicas: 1, maxBytes: -1, maxPayloadBytes: 1_048_576, onlineTtlSec: 120, onlineDeltaSec: 10, perMessageTtl: false, atomicBatch: false };

function spec(name: string, overrides: Partial<StreamSpec> = {}): StreamSpec {
  const base = declarations(PARAMS).streams[0]!;
  return { ...base, name, subjects: [`${name.toLowerCase()}.>`], republish: { src: `${name.toLowerCase()}.>`, dest: `live_${name.toLowerCase()}.>` }, ...overrides };
}

before(async () => {
  nats = await startTestNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

describe('ensure streams', () => {
  it('declares the message stream: file storage, 24 h retention, republish to live subjects, direct get', () => {
    const [s] = declarations(PARAMS).streams;
    assert.equal(s!.name, 'PUSH_MESSAGES');
    assert.equal(s!.storage, 'file');
    assert.equal(s!.maxAgeMs, 86_400_000);
    assert.deepEqual(s!.republish, { src: 'push.msg.>', dest: 'push.live.>' });
    assert.equal(s!.allowDirect, true);
  });

  it('creates a missing stream and converts milliseconds to the server\'s nanoseconds', async () => {
    const ensured = await ensureStream(jsm, spec('T_CREATE'), log);
    assert.equal(ensured.info.config.max_age, 86_400 * 1e9);
    assert.equal(ensured.info.config.duplicate_window, 120 * 1e9);
    assert.ok(Math.abs(ensured.createdSec - Date.now() / 1000) < 60);
  });

  it('applying the same declaration again changes nothing and keeps the epoch', async () => {
    const first = await ensureStream(jsm, spec('T_SAME'), log);
    const second = await ensureStream(jsm, spec('T_SAME'), log);
    assert.equal(second.createdSec, first.createdSec);
    assert.deepEqual(second.info.config, first.info.config);
  });

  it('updates fields that can change in place (retention age)', async () => {
    await ensureStream(jsm, spec('T_UPDATE'), log);
    const updated = await ensureStream(jsm, spec('T_UPDATE', { maxAgeMs: 3_600_000 }), log);
    assert.equal(updated.info.config.max_age, 3_600 * 1e9);
    assert.equal((await jsm.streams.info('T_UPDATE')).config.max_age, 3_600 * 1e9);
  });

  it('leaves an existing stream as it is when told not to update it (a gateway with other TTLs than the publishers)', async () => {
    await ensureStream(jsm, spec('T_KEEP'), log);
    const kept = await ensureStream(jsm, spec('T_KEEP', { maxAgeMs: 3_600_000 }), log, false);
    assert.equal(kept.info.config.max_age, 86_400 * 1e9);
    assert.equal((await jsm.streams.info('T_KEEP')).config.max_age, 86_400 * 1e9);
  });

  it('refuses to start on drift that cannot be changed, naming the field', async () => {
    await ensureStream(jsm, spec('T_DRIFT', { storage: 'memory' }), log);
    await assert.rejects(ensureStream(jsm, spec('T_DRIFT'), log), (err: unknown) => {
      assert.ok(err instanceof StreamDriftError);
      assert.equal(err.field, 'storage');
      assert.match(err.message, /T_DRIFT: field "storage"/);
      return true;
    });
  });
});
