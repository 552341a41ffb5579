import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';

/**
 * A NATS server that takes smaller messages than limits.maxPayloadBytes: jetpull
 * lowers its own limit to what the server can store and says so, so a body that
 * could never be stored is answered 413 at once, not retried into a 503.
 */

const SERVER_MAX = 64 * 1024;
let nats: LocalNats;
let store: string;
let t: TestApp;

before(async () => {
  store = mkdtempSync(join(tmpdir(), 'jetpull-small-payload-'));
  nats = await startLocalNats({ storeDir: store, port: -1, maxPayloadBytes: SERVER_MAX });
  t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 3_000 } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
  rmSync(store, { recursive: true, force: true });
});

describe('a NATS max_payload below limits.maxPayloadBytes', () => {
  it('lowers the limit at start and says so in the log', () => {
    const warning = t.logs.find('nats max_payload is smaller than limits.maxPayloadBytes; the limit is lowered to fit')[0];
    assert.ok(warning, 'a warning at start');
    assert.ok((warning.effectiveMaxPayloadBytes as number) < SERVER_MAX);
  });

  it('answers 413 at once for a body the server could never store, and still stores what fits', async () => {
    const user = newUser();
    const started = Date.now();
    const res = await publishText(t.base, user.priv, `{"pad":"${'x'.repeat(SERVER_MAX)}"}`, 3600);
    assert.equal(res.status, 413);
    assert.ok(Date.now() - started < 1_000, `answered after ${Date.now() - started} ms`);
    assert.equal((await publishText(t.base, user.priv, `{"pad":"${'x'.repeat(SERVER_MAX / 2)}"}`, 3600)).status, 200);
  });
});
