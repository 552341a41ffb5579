import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseConfig } from '../../src/config/load.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { NatsAccess } from '../../src/nats/nats-access.ts';
import { StreamReadError } from '../../src/errors/app-error.ts';
import { STORED_PREFIX, storedSubject } from '../../src/nats/subjects.ts';
import { startTestCluster, type TestCluster } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * A catch-up scans the stream with a short-lived consumer, and creating one needs the
 * cluster's metadata leader. When the node that led both the stream and the metadata
 * dies, the stream gets its new leader first and the metadata a moment later: a
 * creation asked in between is never answered. A scan must then fail at once and be
 * tried again, not wait out the 5 s of an ordinary request while live delivery is held
 * (what made deliveries resume 4 s after publishing did in the compose stack's leader
 * kill).
 *
 * Shown here without the race: an R1 stream on one node of three, the two others
 * frozen. That node still leads its stream (positions answer), but there is no
 * metadata leader.
 */

const STREAM = 'SCAN_TEST';
const log = createRootLogger({ level: 'silent', processUniqueId: 'test', version: 'test' });
let cluster: TestCluster;
let nc: NatsConnection;
let access: NatsAccess;

before(async () => {
  cluster = await startTestCluster(3, 'jetpull-scan');
  const setup = await connect({ servers: cluster.nodes[0]!.url });
  const jsm = await jetstreamManager(setup, { timeout: 5_000 });
  await jsm.streams.add({ name: STREAM, subjects: [`${STORED_PREFIX}>`], num_replicas: 1 });
  const info = await jsm.streams.info(STREAM);
  await setup.close();
  // Everything connects to the node that holds the stream (servers are named n1, n2, n3), and only to it.
  const holder = cluster.nodes[Number(info.cluster?.leader?.slice(1)) - 1]!;
  nc = await connect({ servers: holder.url });
  const js = jetstream(nc);
  for (let i = 0; i < 5; i++) await js.publish(storedSubject(`scan${i}`), new Uint8Array([i]));
  access = await NatsAccess.open(parseConfig({ nats: { url: holder.url } }).nats, holder.url, log);
  for (const n of cluster.nodes) if (n !== holder) await n.pause();
  // Were the holder the metadata leader, it answers until it notices it lost its quorum.
  const probe = await jetstreamManager(nc, { timeout: 1_000, checkAPI: false });
  await eventually('the metadata leader to be gone', () => probe.getAccountInfo().then(() => false, () => true), 30_000, 250);
});

after(async () => {
  for (const n of cluster?.nodes ?? []) await n.resume().catch(() => undefined);
  await access?.close();
  await nc?.close();
  await cluster?.stop();
});

describe('a stream scan while the cluster has no metadata leader', () => {
  it('fails at once (after a short question to the metadata leader) instead of after the request timeout, so a catch-up tries again soon', async () => {
    const reader = access.streamReader(STREAM, { replicas: 1 });
    // The node still answers for its own stream.
    const position = await eventually('the stream position', () => reader.position().catch(() => undefined), 20_000, 100);
    assert.equal(position.lastSeq, 5);
    const started = Date.now();
    await assert.rejects(
      reader.scan(0, () => true, () => undefined),
      (err: unknown) => err instanceof StreamReadError,
    );
    const took = Date.now() - started;
    assert.ok(took < 2_500, `the scan failed after ${took} ms`);
  });

  it('reads every message once the metadata leader is back', async () => {
    for (const n of cluster.nodes) await n.resume();
    const reader = access.streamReader(STREAM, { replicas: 1 });
    const seen = await eventually(
      'a scan to succeed',
      async () => {
        const got: number[] = [];
        return await reader.scan(0, () => true, (m) => got.push(m.seq)).then(
          () => got,
          () => undefined,
        );
      },
      30_000,
      250,
    );
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
  });
});
