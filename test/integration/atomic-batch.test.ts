import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DiscardPolicy, jetstreamManager, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { MESSAGE_STREAM } from '../../streams/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { startTestCluster, startTestNats, type TestCluster } from '../helpers/nats-server.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * A publish to several receivers: one atomic batch on a replicated stream of
 * nats-server 2.12+ (every copy stored or none), one copy at a time on older servers
 * and on a single-replica stream. Each test runs on whichever server
 * JETPULL_TEST_NATS_BINARY names and asserts the path that server gets.
 */

let cluster: TestCluster;
let t: TestApp;
let nc: NatsConnection;
let jsm: JetStreamManager;
/** The server has atomic batches (2.12+). */
let batches: boolean;
/** The replicated stream's settings, as the tests below expect them. */
const R3 = { storage: { streamReplicas: 3 }, nats: { requestTimeoutMs: 3_000 } } as const;

const body = (n: string): string => `{"module_id":"t","command":"m","params":{"n":"${n}"}}`;
const seqOf = (mid: string): number => Number(mid.slice(10));
const subjectOf = (id: string): string => `push.msg.priv.${id}`;

async function publishNats(channels: string[], text: string, id?: string): Promise<{ mids?: string[]; error?: { code: string; temporary: boolean } }> {
  return (await nc.request('push.publish', JSON.stringify({ channels, body: text, expiry: 3600, ...(id === undefined ? {} : { id }) }), { timeout: 10_000 })).json();
}

/** Read from the stream leader (a direct get may be answered by a replica that is behind). */
async function storedAt(seq: number): Promise<StoredMsg> {
  const m = await jsm.streams.getMessage(MESSAGE_STREAM, { seq });
  assert.ok(m, `message ${seq} is stored`);
  return m;
}

async function lastOn(id: string): Promise<StoredMsg> {
  const m = await jsm.streams.getMessage(MESSAGE_STREAM, { last_by_subj: subjectOf(id) });
  assert.ok(m, `a message on ${id}`);
  return m;
}

/** Messages stored on each private channel. */
async function copiesOn(ids: readonly string[]): Promise<number[]> {
  return Promise.all(
    ids.map(async (id) => (await jsm.streams.info(MESSAGE_STREAM, { subjects_filter: subjectOf(id) })).state.subjects?.[subjectOf(id)] ?? 0),
  );
}

async function updateStream(change: Record<string, unknown>): Promise<void> {
  const info = await jsm.streams.info(MESSAGE_STREAM);
  await jsm.streams.update(MESSAGE_STREAM, { ...info.config, ...change });
}

before(async () => {
  cluster = await startTestCluster(3);
  nc = await connect({ servers: cluster.url.split(',') });
  jsm = await jetstreamManager(nc);
  const [major = 0, minor = 0] = (nc.info?.version ?? '0.0').split('.').map(Number);
  batches = major > 2 || (major === 2 && minor >= 12);
  t = await startTestApp(cluster.url, { ...R3, publisher: { publishTimeoutMs: 2_500 }, gateway: { longPollTimeoutMs: 1_000 } });
});
after(async () => {
  await nc?.close();
  await t?.stop();
  await cluster?.stop();
});

describe('multi-receiver publish on a replicated stream', () => {
  it('the server decides the path, and the copies say how to find the first one', async () => {
    assert.equal((await jsm.streams.info(MESSAGE_STREAM)).config.allow_atomic === true, batches, `server ${nc.info?.version} echoes allow_atomic`);
    const chosen = t.logs.find('multi-receiver publish path');
    assert.equal(chosen.length, 1, 'decided and logged once');
    assert.equal(chosen[0]!.atomicBatch, batches);

    const [a, b] = [newUser(), newUser()];
    const shared = newShared();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${a.token}/${b.token}/${shared.token}`);
    const reply = await publishNats([a.priv, b.priv, shared.id], body('three'));
    assert.equal(reply.mids?.length, 3, JSON.stringify(reply));
    const stored = await Promise.all(reply.mids!.map((mid) => storedAt(seqOf(mid))));
    const pubId = stored[0]!.header.get('Jp-Pub');
    assert.ok(pubId !== '');
    stored.forEach((m, i) => {
      assert.equal(m.header.get('Jp-Pub'), pubId);
      assert.equal(m.header.get('Nats-Msg-Id'), `${pubId}.${i}`, 'every copy keeps its message id');
      assert.equal(m.header.get('Jp-First-Key'), i === 0 ? '' : `priv.${a.priv}`);
    });
    if (batches) {
      assert.deepEqual(stored.map((m) => m.seq), [0, 1, 2].map((i) => stored[0]!.seq + i), 'a batch is stored at consecutive sequences');
      assert.equal(new Set(stored.map((m) => m.header.get('Nats-Batch-Id'))).size, 1, 'one batch');
      assert.ok(stored[0]!.header.get('Nats-Batch-Id') !== '');
      assert.deepEqual(stored.map((m) => m.header.get('Jp-First-Offset')), ['', '1', '2']);
      assert.deepEqual(stored.map((m) => m.header.get('Jp-First')), ['', '', '']);
    } else {
      assert.deepEqual(stored.map((m) => m.header.get('Nats-Batch-Id')), ['', '', '']);
      assert.deepEqual(stored.map((m) => m.header.get('Jp-First')), ['', String(stored[0]!.seq), String(stored[0]!.seq)]);
    }
    await eventually('the message', () => parseTextFrames(ws.text()).length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(parseTextFrames(ws.text()).map((f) => f.mid), [reply.mids![0]], 'a connection on every receiver gets the first copy, once');
    ws.close();
    // It slept after the first copy: its mid falls between the copies, and the others must not come back.
    await publishNats([shared.id], body('after'));
    const rest = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${a.token}/${b.token}/${shared.token}&mid=${reply.mids![0]}`).result;
    assert.deepEqual(parseTextFrames(rest.body.toString()).map((f) => (f.text as { params: { n: string } }).params.n), ['after']);
  });

  it('a write whose acknowledgement is lost is retried and stored once; the 200 waits for the acknowledgement', async () => {
    const proxy = await TcpProxy.start(cluster.nodes[0]!.port);
    const tp = await startTestApp(proxy.url, { ...R3, publisher: { natsSubject: 'push.publish.proxied' } });
    try {
      const ids = [newUser().priv, newUser().priv, newUser().priv];
      const key = randomUUID();
      // The first copy's message id goes out again only when the write is retried.
      const sent = proxy.countSent(`${key}.0\r\n`);
      proxy.holdReplies();
      let answered = false;
      const res = publishText(tp.base, ids.join('/'), body('lost-ack'), 3600, { 'Idempotency-Key': key }).finally(() => {
        answered = true;
      });
      await eventually('the write retried after its acknowledgement timed out', () => sent() >= 2, 8_000);
      assert.equal(answered, false, 'no answer before an acknowledgement');
      // One copy at a time, the others wait for the first one's acknowledgement.
      assert.deepEqual(await copiesOn(ids), batches ? [1, 1, 1] : [1, 0, 0], 'the first attempt was stored');
      proxy.releaseReplies();
      assert.equal((await res).status, 200);
      assert.deepEqual(await copiesOn(ids), [1, 1, 1], 'stored once');
      if (batches) {
        // The retry was the same batch again (new batch id, same message ids), refused as a duplicate.
        const lasts = await Promise.all(ids.map(lastOn));
        assert.equal(new Set(lasts.map((m) => m.header.get('Nats-Batch-Id'))).size, 1, 'the copies of the first attempt');
      }
    } finally {
      proxy.releaseReplies();
      await tp.stop();
      await proxy.close();
    }
  });

  it('a publish that fails stores no copy as a batch, the first alone one copy at a time; its retry stores each once', async () => {
    const ids = [newUser().priv, newUser().priv, newUser().priv];
    const key = randomUUID();
    const info = await jsm.streams.info(MESSAGE_STREAM);
    // Room for one more message, and new ones are refused beyond it (a 503 of the stream: temporary).
    await updateStream({ discard: DiscardPolicy.New, max_msgs: info.state.messages + 1 });
    try {
      const failed = await publishText(t.base, ids.join('/'), body('full'), 3600, { 'Idempotency-Key': key });
      assert.equal(failed.status, 503, 'the stream may have room later');
      assert.deepEqual(await copiesOn(ids), batches ? [0, 0, 0] : [1, 0, 0]);
    } finally {
      await updateStream({ discard: info.config.discard, max_msgs: info.config.max_msgs });
    }
    assert.equal((await publishText(t.base, ids.join('/'), body('full'), 3600, { 'Idempotency-Key': key })).status, 200);
    assert.deepEqual(await copiesOn(ids), [1, 1, 1]);
  });

  it('an idempotency key names one publish to several receivers: a retry answers its mids, another body is 409', async () => {
    const ids = [newUser().priv, newUser().priv];
    const key = randomUUID();
    const first = await publishNats(ids, body('a'), key);
    assert.equal(first.mids?.length, 2, JSON.stringify(first));
    const retry = await publishNats(ids, body('a'), key);
    assert.deepEqual(retry.mids, first.mids, 'the stored mids');
    const other = await publishNats(ids, body('b'), key);
    assert.equal(other.error?.code, 'PUSH_ERR_IDEMPOTENCY_CONFLICT');
    assert.equal(other.error?.temporary, false);
    assert.deepEqual(await copiesOn(ids), [1, 1]);
  });

  it('publishes over atomicBatchMaxReceivers, and all of them once the stream stops allowing batches, are written one copy at a time', async () => {
    const small = await startTestApp(cluster.url, { ...R3, publisher: { natsSubject: 'push.publish.small', atomicBatchMaxReceivers: 2 } });
    try {
      const batchIdsOf = async (ids: string[]): Promise<string[]> => Promise.all(ids.map(async (id) => (await lastOn(id)).header.get('Nats-Batch-Id')));
      const two = [newUser().priv, newUser().priv];
      const three = [newUser().priv, newUser().priv, newUser().priv];
      assert.equal((await publishText(small.base, two.join('/'), body('two'), 3600)).status, 200);
      assert.equal((await publishText(small.base, three.join('/'), body('three'), 3600)).status, 200);
      assert.equal(new Set(await batchIdsOf(two)).size, 1);
      assert.equal((await batchIdsOf(two))[0] !== '', batches, 'within the limit: a batch where the server has them');
      assert.deepEqual(await batchIdsOf(three), ['', '', ''], 'over the limit: one copy at a time');

      await updateStream({ allow_atomic: false });
      try {
        for (const n of ['off-1', 'off-2']) {
          const ids = [newUser().priv, newUser().priv];
          assert.equal((await publishText(small.base, ids.join('/'), body(n), 3600)).status, 200);
          assert.deepEqual(await copiesOn(ids), [1, 1]);
          assert.deepEqual(await batchIdsOf(ids), ['', '']);
        }
        const warned = small.logs.find('the stream no longer allows atomic batches; publishes are written one copy at a time');
        assert.equal(warned.length, batches ? 1 : 0, 'noticed once, where batches were in use');
      } finally {
        if (batches) await updateStream({ allow_atomic: true });
      }
    } finally {
      await small.stop();
    }
  });

  it('the appender stores a batch only as a batch: a copy the stream refuses fails it whole, named when each copy is answered', async () => {
    const cfg = parseConfig({ nats: { url: cluster.url } });
    const access = await NatsAccess.open(cfg.nats, cluster.url, createRootLogger({ level: 'silent', processUniqueId: 'test', version: 'test' }));
    const appender = access.appender();
    try {
      const ids = [newUser().priv, newUser().priv, newUser().priv];
      const pubId = randomUUID();
      const copies = ids.map((id, i) => ({ key: `priv.${id}`, msgId: `${pubId}.${i}`, meta: { expirySec: 60, pubId, ...(i === 0 ? { senderId: 'x'.repeat(5_000) } : {}) } }));
      const data = Buffer.from(body('refused'));
      if (!batches) {
        // A server without batches ignores the batch headers and stores each copy: never taken for a batch.
        await assert.rejects(appender.appendBatch(copies, data, 2_000), { code: 'PUSH_ERR_PUBLISH_REJECTED', temporary: false });
        assert.deepEqual(await copiesOn(ids), [1, 1, 1], 'why the batch path is only taken when the stream echoes allow_atomic');
        return;
      }
      const info = await jsm.streams.info(MESSAGE_STREAM);
      // The first copy (5 kB of headers) is over the limit, the others are not.
      await updateStream({ max_msg_size: 4_096 });
      try {
        await assert.rejects(appender.appendBatch(copies, data, 2_000), { code: 'PUSH_ERR_NATS_UNAVAILABLE', temporary: true }, 'only "incomplete" on the commit');
        await assert.rejects(appender.appendBatch(copies, data, 2_000, true), (err: Error & { temporary?: boolean }) => err.temporary === false && /10054/.test(err.message));
        assert.deepEqual(await copiesOn(ids), [0, 0, 0]);
      } finally {
        await updateStream({ max_msg_size: info.config.max_msg_size });
      }
      // With an answer to every copy (as retries ask): the empty answers are not taken for the commit's.
      const stored = await appender.appendBatch(copies.map((c) => ({ ...c, meta: { expirySec: 60, pubId } })), data, 2_000, true);
      assert.deepEqual(stored.stored && stored.count, 3);
      const again = await appender.appendBatch(copies, data, 2_000);
      assert.deepEqual(again.stored ? 'stored again' : again.refusal, 'duplicate', 'a replay of a stored batch');
      assert.deepEqual(await copiesOn(ids), [1, 1, 1]);
    } finally {
      appender.close();
      await access.close();
    }
  });
});

describe('multi-receiver publish on a single-replica stream', () => {
  it('is written one copy at a time on every server: batches there cost the server a file store each', async () => {
    const single = await startTestNats();
    const app = await startTestApp(single.url);
    const snc = await connect({ servers: single.url });
    try {
      const sjsm = await jetstreamManager(snc);
      assert.notEqual((await sjsm.streams.info(MESSAGE_STREAM)).config.allow_atomic, true, 'not asked for');
      assert.equal(app.logs.find('multi-receiver publish path')[0]?.atomicBatch, false);
      const ids = [newUser().priv, newUser().priv, newUser().priv];
      const reply = (await snc.request('push.publish', JSON.stringify({ channels: ids, body: body('r1'), expiry: 3600 }), { timeout: 10_000 })).json<{ mids: string[] }>();
      const stored = await Promise.all(reply.mids.map((mid) => sjsm.direct.getMessage(MESSAGE_STREAM, { seq: seqOf(mid) })));
      assert.deepEqual(stored.map((m) => m?.header.get('Nats-Batch-Id')), ['', '', '']);
      assert.deepEqual(stored.map((m) => m?.header.get('Jp-First')), ['', String(seqOf(reply.mids[0]!)), String(seqOf(reply.mids[0]!))]);
    } finally {
      await snc.close();
      await app.stop();
      await single.stop();
    }
  });
});
