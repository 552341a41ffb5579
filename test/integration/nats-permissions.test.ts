import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { NATS_PASSWORDS, shippedAuthBlock, violated as violatedIn, violationsIn } from '../helpers/nats-auth.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { channelStatsRequest, decodeResponseBatch, hex, incomingMessages } from '../helpers/protobuf.ts';
import { testNatsConf } from '../deploy/lib/nats-conf.ts';
import { resolveNatsBinary } from '../../src/nats/local-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';

/**
 * The NATS users shipped in deploy/nats/auth.conf, exactly as written there (test
 * passwords in place of the environment references): a gateway-role and a
 * publisher-role jetpull, each with its own user, do everything their role does
 * without one permission violation in the server's log, and each user is refused
 * what belongs to the other role.
 */

const PASSWORDS = { NATS_GATEWAY_PASSWORD: NATS_PASSWORDS.gateway, NATS_PUBLISHER_PASSWORD: NATS_PASSWORDS.publisher };
const authBlock = shippedAuthBlock();

const serverLog: string[] = [];
const violations = (): string[] => violationsIn(serverLog);
const violated = (kind: 'Publish' | 'Subscription', user: string, subject: string): boolean => violatedIn(serverLog, kind, user, subject);
const body = (n: number): string => `{"module_id":"t","command":"perm","params":{"n":${n}}}`;
const ns = (ws: TestWs): number[] => parseTextFrames(ws.text()).map((f) => (f.text as { params: { n: number } }).params.n);
const MID_ZERO = '10000000000000000000000000';

let nats: TestNats;
let gateway: TestApp;
let publisher: TestApp;

before(async () => {
  nats = await startTestNats({ extraConfig: authBlock, onLog: (l) => serverLog.push(l) });
  // The gateway first, on an empty server: it creates the streams and buckets itself.
  gateway = await startTestApp(nats.url, {
    role: 'gateway',
    processUniqueId: 'perm-gw',
    nats: { user: 'gateway', password: PASSWORDS.NATS_GATEWAY_PASSWORD },
    // One replay at a time: a burst of reconnects queues up and is read by one scan (a consumer).
    gateway: { longPollTimeoutMs: 1_000, maxConcurrentReplays: 1 },
  });
  publisher = await startTestApp(nats.url, {
    role: 'publisher',
    processUniqueId: 'perm-pub',
    nats: { user: 'publisher', password: PASSWORDS.NATS_PUBLISHER_PASSWORD },
  });
});
after(async () => {
  await Promise.all([gateway?.stop(), publisher?.stop()]);
  await nats?.stop();
});

async function client(user: string, password: string): Promise<NatsConnection> {
  return connect({ servers: nats.url, user, pass: password, name: `perm-test-${user}` });
}

describe('deploy/nats/auth.conf: each role with its own user', () => {
  it('every shipped node config, users included, is valid for this nats-server (-t)', async () => {
    const binary = resolveNatsBinary(process.env.JETPULL_TEST_NATS_BINARY ?? 'nats-server');
    for (const file of ['nats-server.conf', 'cluster/nats1.conf', 'cluster/nats2.conf', 'cluster/nats3.conf']) {
      const { code, output } = await testNatsConf(new URL(`../../deploy/nats/${file}`, import.meta.url).pathname, binary);
      assert.equal(code, 0, `${binary} -c deploy/nats/${file} -t: ${output.trim()}`);
    }
  });

  it('publish over HTTP (text and binary) and NATS, replay by mid, client publishes, presence and stats work', async () => {
    const user = newUser();
    const shared = newShared();
    const ws = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
    assert.equal((await publishText(publisher.base, `${user.priv}/${shared.id}`, body(1), 600)).status, 200);
    const batch = incomingMessages([{ receivers: [{ id: hex(user.priv), isPrivate: true }], body: body(2), expiry: 600 }]);
    assert.equal((await fetch(`${publisher.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: batch })).status, 200);
    const backend = await client('publisher', PASSWORDS.NATS_PUBLISHER_PASSWORD);
    try {
      const reply = await backend.request('push.publish', JSON.stringify({ channels: [user.priv], body: JSON.parse(body(3)), expiry: 600 }), { timeout: 5_000 });
      assert.match(reply.string(), /"mids":\["\d{26}"\]/);
    } finally {
      await backend.close();
    }
    // A retry under an Idempotency-Key is compared with the stored copy; another body under it is refused.
    const again = await publishText(publisher.base, user.priv, body(1), 600, { 'Idempotency-Key': `perm-${user.priv}` });
    assert.equal(again.status, 200);
    assert.equal((await publishText(publisher.base, user.priv, body(1), 600, { 'Idempotency-Key': `perm-${user.priv}` })).status, 200, 'the retry');
    assert.equal((await publishText(publisher.base, user.priv, body(9), 600, { 'Idempotency-Key': `perm-${user.priv}` })).status, 409, 'another body under the key');
    // A client publish through the gateway (/bitrix/rest/, public receivers only).
    const sender = newUser();
    const sig = Buffer.from(user.publicAddress.split('.')[1]!, 'hex');
    const rest = await fetch(`${gateway.base}/bitrix/rest/?CHANNEL_ID=${sender.token}`, {
      method: 'POST',
      body: incomingMessages([{ receivers: [{ id: hex(user.pub), isPrivate: false, signature: sig }], body: body(4), expiry: 60 }]),
    });
    assert.equal(rest.status, 200);
    await eventually('five messages live', () => ns(ws).length >= 5 && ns(ws));
    assert.deepEqual(ns(ws).sort(), [1, 1, 2, 3, 4]);

    // Replay by mid: one client on its own (direct gets), then a burst that queues up (a scan).
    const one = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${MID_ZERO}`);
    await eventually('the replay', () => ns(one).length >= 5);
    one.close();
    const poll = await longPoll(`${gateway.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${MID_ZERO}`).result;
    assert.equal(poll.status, 200);
    // NATS frozen while they arrive, so the replays are still waiting when it answers again.
    await nats.pause();
    const opening = Array.from({ length: 24 }, () => openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}/${shared.token}&mid=${MID_ZERO}`));
    await new Promise((r) => setTimeout(r, 1_000));
    await nats.resume();
    const burst = await Promise.all(opening);
    await Promise.all(burst.map((c) => eventually('a replay of the burst', () => ns(c).includes(1), 20_000)));
    for (const c of burst) c.close();
    assert.ok(gateway.logs.find('shared replay scan done').length > 0, 'the burst was read by a shared scan');

    // Presence, as the publisher reads it, text and binary.
    const online = await eventually('the channel online', async () => {
      const res = await fetch(`${publisher.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`);
      const infos = ((await res.json()) as { infos: unknown[] }).infos;
      return infos.length === 1 && infos;
    });
    assert.deepEqual(online, [{ channel: user.priv, subscribers: 1 }]);
    const stats = await fetch(`${publisher.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: channelStatsRequest([{ id: hex(user.priv), isPrivate: true }]) });
    assert.deepEqual(decodeResponseBatch(new Uint8Array(await stats.arrayBuffer()))[0]?.channelStats?.map((c) => c.isOnline), [true]);

    // Server stats on both: every process's object.
    for (const app of [gateway, publisher]) {
      await eventually('both processes in /server-stat/', async () => {
        const list = (await (await fetch(`${app.base}/server-stat/`)).json()) as Array<{ processUniqueId: string }>;
        return list.map((p) => p.processUniqueId).sort().join() === 'perm-gw,perm-pub';
      });
    }
    ws.close();
    assert.deepEqual(violations(), []);
  });

  it('after a NATS restart both roles reconnect, the gateway catches up and delivery goes on', async () => {
    const user = newUser();
    const ws = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    assert.equal((await publishText(publisher.base, user.priv, body(10), 600)).status, 200);
    await eventually('before the restart', () => ns(ws).includes(10));
    await nats.kill();
    await nats.start();
    const after = await eventually('a publish after the restart', async () => (await publishText(publisher.base, user.priv, body(11), 600)).status === 200, 30_000);
    assert.ok(after);
    await eventually('delivered after the restart', () => ns(ws).includes(11), 30_000);
    ws.close();
    const fresh = await openWs(`${gateway.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=${MID_ZERO}`);
    await eventually('replayed after the restart', () => ns(fresh).includes(10) && ns(fresh).includes(11));
    fresh.close();
    assert.deepEqual(violations(), []);
    for (const app of [gateway, publisher]) {
      assert.deepEqual(app.logs.raw.filter((l) => /permission/i.test(l)), [], 'no permission error in jetpull');
    }
  });

  it('the gateway user may not publish to push.publish or write private channels', async () => {
    const nc = await client('gateway', PASSWORDS.NATS_GATEWAY_PASSWORD);
    try {
      await assert.rejects(nc.request('push.publish', '{}', { timeout: 3_000 }), /permission/i);
      nc.publish(`push.msg.priv.${newUser().priv}`, 'x');
      await nc.flush();
    } finally {
      await nc.close();
    }
    await eventually('both violations in the server log', () => {
      return violated('Publish', 'gateway', 'push.publish"') && violated('Publish', 'gateway', 'push.msg.priv.');
    });
  });

  it('the publisher user may not subscribe to push.live.> or write presence', async () => {
    const nc = await client('publisher', PASSWORDS.NATS_PUBLISHER_PASSWORD);
    try {
      const sub = nc.subscribe('push.live.>');
      await assert.rejects((async () => {
        for await (const _ of sub) break;
      })(), /permission/i);
      nc.publish(`$KV.PUSH_PRESENCE.priv.${newUser().priv}`, 'x');
      await nc.flush();
    } finally {
      await nc.close();
    }
    await eventually('both violations in the server log', () => {
      return violated('Subscription', 'publisher', 'push.live.>"') && violated('Publish', 'publisher', '$KV.PUSH_PRESENCE.');
    });
  });

  it('nats.passwordFile: the password read from a file logs in (a trailing newline ignored); an unreadable file stops start-up naming the setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jetpull-pwfile-'));
    try {
      const file = join(dir, 'password');
      writeFileSync(file, `${PASSWORDS.NATS_PUBLISHER_PASSWORD}\n`);
      const app = await startTestApp(nats.url, { role: 'publisher', processUniqueId: 'perm-file', nats: { user: 'publisher', passwordFile: file } });
      try {
        assert.equal((await publishText(app.base, newUser().priv, body(20), 60)).status, 200);
      } finally {
        await app.stop();
      }
      await assert.rejects(
        startTestApp(nats.url, { role: 'publisher', processUniqueId: 'perm-nofile', nats: { user: 'publisher', passwordFile: join(dir, 'missing') } }),
        /nats\.passwordFile \(PUSH_NATS__PASSWORD_FILE\): cannot read/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
