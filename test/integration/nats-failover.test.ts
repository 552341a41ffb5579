import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startTestApp } from '../helpers/app.ts';
import { newId, newShared } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';
import { startTestCluster, startTestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * No acknowledged message is lost when NATS fails: the stream leader of a 3-node
 * cluster is killed while messages flow, or the only nats-server is killed and
 * restarted. Clients keep their connections, live delivery resumes, and every
 * message that was answered 200 reaches them once and stays replayable.
 */

const body = (n: number): string => `{"module_id":"t","command":"m","params":{"n":${n}}}`;
const seen = (c: TestWs): number[] => parseTextFrames(c.text()).map((f) => (f.text as { params: { n: number } }).params.n);

/** Publishes n = 0, 1, 2, … until stopped; remembers which ones were acknowledged (200). */
function publishLoop(base: string, channel: string, pauseMs: number) {
  const acked: number[] = [];
  const refused: number[] = [];
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      const i = n++;
      const res = await publishText(base, channel, body(i), 3600).catch(() => undefined);
      if (res?.status === 200) acked.push(i);
      else refused.push(i);
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    acked,
    refused,
    async stop() {
      running = false;
      await done;
    },
  };
}

describe('nats failover', () => {
  it('3-node cluster: killing the stream leader while messages flow loses no acknowledged message; clients keep receiving; replay is intact', async () => {
    const cluster = await startTestCluster(3);
    const t = await startTestApp(cluster.url, { storage: { streamReplicas: 3 }, publisher: { publishTimeoutMs: 10_000 }, nats: { requestTimeoutMs: 3_000 } });
    const probe = await connect({ servers: cluster.nodes.map((n) => n.url) });
    try {
      const jsm = await jetstreamManager(probe);
      const shared = newShared();
      const reply = await probe.request('push.publish', JSON.stringify({ channels: [newId()], body: '{}', expiry: 60 }), { timeout: 10_000 });
      const [start] = reply.json<{ mids: string[] }>().mids;
      const clients = await Promise.all(Array.from({ length: 5 }, () => openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`)));
      const flow = publishLoop(t.base, shared.id, 20);
      await eventually('messages flowing', () => flow.acked.length >= 20, 10_000);

      const leader = (await jsm.streams.info('PUSH_MESSAGES')).cluster?.leader;
      assert.ok(leader, 'the stream has a leader');
      const victim = cluster.nodes[Number(leader.slice(1)) - 1]!;
      await victim.kill();
      const ackedBeforeKill = flow.acked.length;
      await eventually('publishes acknowledged after the new leader', () => flow.acked.length >= ackedBeforeKill + 30, 30_000, 100);
      await flow.stop();

      const expected = [...flow.acked].sort((a, b) => a - b);
      for (const c of clients) {
        await eventually('every acknowledged message live', () => expected.every((n) => seen(c).includes(n)), 20_000, 100);
        assert.equal(c.ws.readyState, c.ws.OPEN, 'the client kept its connection');
        const got = seen(c);
        assert.equal(new Set(got).size, got.length, 'no duplicates');
        c.close();
      }
      const replay = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${shared.token}&mid=${start}`).result;
      const replayed = parseTextFrames(replay.body.toString()).map((f) => (f.text as { params: { n: number } }).params.n);
      for (const n of expected) assert.ok(replayed.includes(n), `acknowledged message ${n} is replayable`);
      assert.equal(new Set(replayed).size, replayed.length);
    } finally {
      await probe.close();
      await t.stop();
      await cluster.stop();
    }
  });

  it('single server: kill -9 and restart under load; clients stay connected and are caught up; publishes answer 503 meanwhile and recover', async () => {
    const nats = await startTestNats();
    const t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 1_000 } });
    try {
      const shared = newShared();
      const clients = await Promise.all(Array.from({ length: 5 }, () => openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${shared.token}`)));
      const flow = publishLoop(t.base, shared.id, 10);
      await eventually('messages flowing', () => flow.acked.length >= 20, 10_000);
      await nats.kill();
      await eventually('publishes refused while NATS is away', () => flow.refused.length >= 2, 10_000);
      await nats.start();
      const ackedAfterRestart = flow.acked.length;
      await eventually('publishes acknowledged again', () => flow.acked.length >= ackedAfterRestart + 20, 20_000, 100);
      await flow.stop();
      const expected = [...flow.acked].sort((a, b) => a - b);
      for (const c of clients) {
        await eventually('every acknowledged message', () => expected.every((n) => seen(c).includes(n)), 20_000, 100);
        assert.equal(c.ws.readyState, c.ws.OPEN, 'the client kept its connection');
        const got = seen(c);
        assert.equal(new Set(got).size, got.length, 'no duplicates');
        c.close();
      }
      assert.ok(t.logs.find('nats reconnected').length >= 1);
      assert.equal((await publishText(t.base, shared.id, body(-1), 60)).status, 200);
    } finally {
      await t.stop();
      await nats.stop();
    }
  });
});
