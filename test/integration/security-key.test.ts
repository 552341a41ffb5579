import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { createSigner } from '../../src/wire/channel-id.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newId, newShared, newUser, sign, signRaw } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { decodeResponseBatch, hex, incomingMessages } from '../helpers/protobuf.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * The signature key: running without one is allowed (Push server 2.0 configs without
 * `security.key` exist) but said at start and in /server-stat/; and several keys at
 * once (security.previousKeys), so the portal can change `signature_key` while the
 * channels it signed before keep working.
 */

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(async () => {
  await nats?.stop();
});

interface StatEntry {
  processUniqueId: string;
  limits: Record<string, number>;
  jetpull?: { warnings: string[]; signatureKeys: number };
}

async function serverStat(t: TestApp): Promise<StatEntry[]> {
  const res = await fetch(`${t.base}/server-stat/`);
  assert.equal(res.status, 200);
  return (await res.json()) as StatEntry[];
}

describe('without a security key', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { security: {}, gateway: { longPollTimeoutMs: 1_000 } });
  });
  after(() => t?.stop());

  it('starts, and says once in the log that unsigned private ids are accepted', () => {
    const lines = t.logs.find('no security key: unsigned private channel ids are accepted');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 40, 'warn');
    assert.equal(lines[0]!.setting, 'security.key');
  });

  it('takes a subscription with a bare private id (anyone who knows an id can listen)', async () => {
    const priv = newId();
    const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${priv}`);
    await publishText(t.base, priv, '{"module_id":"t","command":"c","params":{}}');
    await ws.waitFrames(1);
    ws.close();
  });

  it('/server-stat/ keeps the reference shape and says so in the jetpull object', async () => {
    const [own] = await serverStat(t);
    assert.ok(own);
    for (const k of ['pid', 'date', 'processUniqueId', 'channels', 'limits', 'clusterMode', 'websockets', 'pollings', 'daily']) assert.ok(k in own, k);
    assert.equal(own.jetpull?.signatureKeys, 0);
    assert.ok(own.jetpull?.warnings.some((w) => w.startsWith('no security.key')), JSON.stringify(own.jetpull));
  });
});

describe('with a security key', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url);
  });
  after(() => t?.stop());

  it('does not warn, and /server-stat/ counts one key', async () => {
    assert.equal(t.logs.find('no security key: unsigned private channel ids are accepted').length, 0);
    const [own] = await serverStat(t);
    assert.equal(own!.jetpull?.signatureKeys, 1);
    assert.deepEqual(own!.jetpull?.warnings.filter((w) => w.includes('security.key')), []);
  });
});

describe('key rotation: security.previousKeys', () => {
  const NEW_KEY = 'new-signature-key';
  const OLD_KEY = 'old-signature-key';
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { security: { key: NEW_KEY, previousKeys: [OLD_KEY] }, gateway: { longPollTimeoutMs: 1_000 } });
  });
  after(() => t?.stop());

  for (const [which, key] of [['the old key', OLD_KEY], ['the new key', NEW_KEY]] as const) {
    it(`a channel signed with ${which} subscribes over WebSocket and long polling and gets its messages`, async () => {
      const user = newUser(key);
      const shared = newShared(key);
      const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}/${shared.token}`);
      const poll = longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}/${shared.token}`);
      await eventually('the poll held', () => (t.app.gateway!.stats().pollings === 1 ? true : undefined));
      await publishText(t.base, shared.id, '{"module_id":"t","command":"c","params":{}}');
      await ws.waitFrames(1);
      assert.equal((await poll.result).status, 200);
      ws.close();
    });
  }

  it('a channel signed with any other key is refused with 4010', async () => {
    const user = newUser('some-other-key');
    const refused = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}`).result;
    assert.equal(refused.status, 400);
    assert.equal(refused.body.toString(), '4010: Wrong Channel Id.');
    const ws = new TestWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.priv}.${sign(user.priv, 'some-other-key')}`);
    await assert.rejects(ws.opened, /handshake refused: 400/);
  });

  it('a client publish to a public id signed with the old key is taken', async () => {
    const alice = newUser(NEW_KEY);
    const bob = newUser(OLD_KEY);
    const b = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${bob.token}&binaryMode=true`);
    const body = '{"module_id":"t","command":"c","params":{}}';
    const req = incomingMessages([{ receivers: [{ id: hex(bob.pub), isPrivate: false, signature: signRaw(`public:${bob.pub}`, OLD_KEY) }], body, expiry: 0 }]);
    const res = await fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${alice.token}`, { method: 'POST', body: req });
    assert.equal(res.status, 200, await res.text());
    const [f] = await within('the message', b.waitFrames(1), 5_000);
    assert.equal(decodeResponseBatch(f!.data)[0]!.outgoingMessages![0]!.body, body);
    b.close();
  });

  it('/server-stat/ counts both keys', async () => {
    const [own] = await serverStat(t);
    assert.equal(own!.jetpull?.signatureKeys, 2);
  });

  it('new signatures are made with the first key', () => {
    const signer = createSigner([NEW_KEY, OLD_KEY], 'sha1');
    assert.equal(signer.sign('public:abc'), sign('public:abc', NEW_KEY));
    assert.ok(signer.verifyHex('public:abc', sign('public:abc', OLD_KEY)));
    assert.ok(!signer.verifyHex('public:abc', sign('public:abc', 'x')));
  });
});

describe('previous keys from the configuration', () => {
  it('PUSH_SECURITY__PREVIOUS_KEYS is a comma-separated list', () => {
    const { config } = loadConfig({ argv: [], env: { PUSH_SECURITY__KEY: 'k2', PUSH_SECURITY__PREVIOUS_KEYS: 'k1, k0' } });
    assert.deepEqual(config.security.previousKeys, ['k1', 'k0']);
  });

  it('a Push server 2.0 config file may list them as security.previousKeys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jetpull-keys-'));
    const file = join(dir, 'push-server.json');
    writeFileSync(file, JSON.stringify({ servers: [{ port: 8010, routes: { sub: '/bitrix/subws/' } }], security: { key: 'k2', algo: 'sha1', previousKeys: ['k1'] } }));
    const loaded = loadConfig({ argv: ['--config', file], env: {} });
    assert.equal(loaded.config.security.key, 'k2');
    assert.deepEqual(loaded.config.security.previousKeys, ['k1']);
    assert.deepEqual(loaded.file?.ignoredKeys, []);
  });

  it('previous keys without a key are a configuration error', () => {
    assert.throws(() => loadConfig({ argv: [], env: { PUSH_SECURITY__PREVIOUS_KEYS: 'k1' } }), /security.previousKeys/);
  });
});
