import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { NATS_PASSWORDS, shippedAuthBlock, violationsIn } from '../helpers/nats-auth.ts';
import { startTestCluster, type TestCluster } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';

/**
 * The shipped NATS users on a 3-node cluster with 3 replicas, as docker-compose.yml
 * runs them: reads go to the stream leader (MSG.GET), a publish to several receivers
 * is one atomic batch on nats-server 2.12+, and a killed leader is followed by an
 * election, the leader advisory and a catch-up. None of it is refused by NATS.
 */

const logs: string[][] = [[], [], []];
const body = (n: number): string => `{"module_id":"t","command":"permc","params":{"n":${n}}}`;
const ns = (ws: TestWs): number[] => parseTextFrames(ws.text()).map((f) => (f.text as { params: { n: number } }).params.n);
const MID_ZERO = '10000000000000000000000000';
const R3 = { storage: { streamReplicas: 3 }, nats: { requestTimeoutMs: 3_000 } } as const;

let cluster: TestCluster;
let gateway: TestApp;
let publisher: TestApp;
let leader: number;

before(async () => {
  cluster = await startTestCluster(3, 'jetpull-perm', {
    extraConfig: shippedAuthBlock(),
    onLog: (node, line) => logs[node]!.push(line),
    user: { user: 'publisher', pass: NATS_PASSWORDS.publisher },
  });
  publisher = await startTestApp(cluster.url, { ...R3, role: 'publisher', processUniqueId: 'permc-pub', nats: { ...R3.nats, user: 'publisher', password: NATS_PASSWORDS.publisher } });
  // The gateway on a node that does not lead the stream: it stays connected through the
  // leader's kill and learns of the election from the advisory.
  leader = await streamLeader();
  const other = cluster.nodes[(leader + 1) % 3]!;
  gateway = await startTestApp(other.url, { ...R3, role: 'gateway', processUniqueId: 'permc-gw', nats: { ...R3.nats, user: 'gateway', password: NATS_PASSWORDS.gateway } });
});
after(async () => {
  await Promise.all([gateway?.stop(), publisher?.stop()]);
  await cluster?.stop();
});

/** The node leading the message stream, asked as the publisher user. */
async function streamLeader(): Promise<number> {
  const nc = await connect({ servers: cluster.url.split(','), user: 'publisher', pass: NATS_PASSWORDS.publisher });
  try {
    const info = (await nc.request('$JS.API.STREAM.INFO.PUSH_MESSAGES', '', { timeout: 3_000 })).json<{ cluster?: { leader?: string } }>();
    const leader = info.cluster?.leader;
    assert.ok(leader, 'the stream has a leader');
    return Number(leader.slice(1)) - 1;
  } finally {
    await nc.close();
  }
}

describe('deploy/nats/auth.conf on a 3-node cluster', () => {
  it('multi-receiver publishes, idempotent retries, replay from the leader and a leader kill with catch-up: no permission violation', async () => {
    const users = [newUser(), newUser(), newUser()];
    const channels = users.map((u) => u.priv).join('/');
    const ws = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${users[0]!.token}`);
    assert.equal((await publishText(publisher.base, channels, body(1), 600)).status, 200);
    const key = { 'Idempotency-Key': `permc-${users[0]!.priv}` };
    assert.equal((await publishText(publisher.base, channels, body(2), 600, key)).status, 200);
    assert.equal((await publishText(publisher.base, channels, body(2), 600, key)).status, 200, 'the retry is compared with the stored copy');
    await eventually('both live', () => ns(ws).length >= 2);
    const replay = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${users[1]!.token}&mid=${MID_ZERO}`);
    await eventually('the replay from the leader', () => ns(replay).length >= 2);
    replay.close();

    assert.equal(await streamLeader(), leader, 'the leader the gateway was kept off');
    await cluster.nodes[leader]!.kill();
    try {
      await eventually('a publish after the leader was killed', async () => (await publishText(publisher.base, channels, body(3), 600)).status === 200, 40_000, 500);
      await eventually('delivered after the election', () => ns(ws).includes(3), 30_000);
    } finally {
      await cluster.nodes[leader]!.start();
    }
    const reasons = gateway.logs.find('live delivery held for a catch-up').map((l) => l.reason);
    assert.ok(reasons.includes('stream leader elected'), `the leader advisory started a catch-up (${reasons.join(', ')})`);
    const late = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${users[2]!.token}&mid=${MID_ZERO}`);
    await eventually('everything replayed', () => [1, 2, 3].every((n) => ns(late).includes(n)), 20_000);
    late.close();
    ws.close();
    assert.deepEqual(logs.flatMap((l) => violationsIn(l)), [], 'no node logged a permission violation');
    for (const app of [gateway, publisher]) assert.deepEqual(app.logs.raw.filter((l) => /permission/i.test(l)), [], 'no permission error in jetpull');
  });
});
