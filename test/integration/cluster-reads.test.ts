import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { declarations, MESSAGE_STREAM } from '../../streams/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { newPublishId } from '../../src/nats/stored-message.ts';
import { newId } from '../helpers/channels.ts';
import { startTestCluster, startTestNats, type TestCluster } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * Reads that decide what a client missed must see everything acknowledged before
 * them, whichever node of an R3 cluster the gateway is connected to. A follower that
 * fell behind (here: frozen while the leader and the other follower stored a burst)
 * must not answer "nothing newer" for a message that is already acknowledged.
 */

const log = createRootLogger({ level: 'silent', processUniqueId: 'test', version: 'test' });
let cluster: TestCluster;
let writer: NatsAccess;

before(async () => {
  cluster = await startTestCluster(3);
  const config = parseConfig({ nats: { url: cluster.url } });
  writer = await NatsAccess.open(config.nats, cluster.url, log);
  const decl = declarations({
    messageTtlSec: 3600,
    duplicateWindowMs: 120_000,
    replicas: 3,
    maxBytes: -1,
    maxPayloadBytes: 1 << 20,
    onlineTtlSec: 120,
    onlineDeltaSec: 10,
    perMessageTtl: false,
    atomicBatch: false,
  });
  await writer.ensure(decl, log, { updateExisting: true });
});
after(async () => {
  await writer?.close();
  await cluster?.stop();
});

describe('reads in an R3 cluster', () => {
  it('a connection to a cluster node knows it is one (replays from memory then check the stream first), one to a lone server does not', async () => {
    assert.equal(writer.link.clustered, true);
    const lone = await startTestNats();
    try {
      const access = await NatsAccess.open(parseConfig({ nats: { url: lone.url } }).nats, lone.url, log);
      assert.equal(access.link.clustered, false);
      await access.close();
    } finally {
      await lone.stop();
    }
  });

  it('a gateway on a follower that fell behind never reads a stale "newest message" of a channel', async () => {
    // A new R3 stream elects its leader a moment after it is created.
    const leader = await eventually('the stream to have a leader', async () => (await writer.streamReader(MESSAGE_STREAM).position().catch(() => undefined))?.leader, 20_000, 200);
    const follower = cluster.nodes.find((_, i) => `n${i + 1}` !== leader)!;
    const config = parseConfig({ nats: { url: follower.url } });
    const onFollower = await NatsAccess.open(config.nats, follower.url, log);
    let paused = false;
    try {
      const reader = onFollower.streamReader(MESSAGE_STREAM, { replicas: 3 });
      const key = `priv.${newId()}`;
      const appender = writer.appender();
      const firstId = newPublishId();
      await eventually('a first write', () => appender.append(key, Buffer.from('{}'), firstId, { expirySec: 3600 }, 5_000).then(() => true), 20_000, 250);
      await follower.pause();
      paused = true;
      let last = 0;
      let acked = 0;
      for (let i = 0; i < 20; i++) {
        // On a loaded machine some writes may time out: only what was acknowledged counts.
        const acks = await Promise.allSettled(
          Array.from({ length: 150 }, () => appender.append(key, Buffer.from('{"x":1}'), newPublishId(), { expirySec: 3600 }, 20_000)),
        );
        for (const a of acks) {
          if (a.status !== 'fulfilled') continue;
          acked++;
          last = Math.max(last, a.value.seq);
        }
      }
      assert.ok(acked > 1_000, `only ${acked} writes acknowledged`);
      appender.close();
      await follower.resume();
      paused = false;
      const stale: number[] = [];
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        // A read may fail while the cluster settles after the freeze (the meta leader may
        // have moved): a failed read is retried by jetpull, a wrong answer would not be.
        const m = await reader.last(key).catch(() => 'failed' as const);
        if (m !== 'failed' && (m?.seq ?? 0) < last) stale.push(m?.seq ?? 0);
        // Not a flood: the leader is sending the resumed follower what it missed.
        await sleep(5);
      }
      assert.deepEqual(stale, [], `acknowledged up to ${last}, read older newest messages`);
      // Retried like the reads above while the cluster settles: after a freeze the stream
      // can go without a leader for a while (nats-server 2.9 on a loaded machine: more
      // than 20 s, answering "JetStream system temporarily unavailable"). A walk that
      // answers must be whole.
      const walked = await eventually('a walk to answer', async () => {
        let n = 0;
        for await (const m of reader.after(key, last - 50)) n += m.seq <= last ? 1 : 0;
        return n;
      }, 90_000, 250);
      assert.equal(walked, 50, 'a walk from a position sees every message after it');
    } finally {
      if (paused) await follower.resume();
      await onFollower.close();
    }
  });
});
