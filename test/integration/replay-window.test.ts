import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * The replay window actually held (age of the oldest message) is visible, and a byte
 * limit that cuts it below storage.messageTtlSec is reported instead of silently
 * shortening how long a sleeping client can resume.
 */

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { storage: { streamMaxBytes: 256 * 1024 } });
});
after(async () => {
  await t?.stop();
  await nats?.stop();
});

interface Stat {
  processUniqueId: string;
  jetpull?: { replayWindowSec: number | null; warnings: string[] };
}

describe('replay window', () => {
  it('is exported as a metric and in /server-stat/, with a warning once the byte limit shortens it', async () => {
    const user = newUser();
    const pad = 'x'.repeat(8 * 1024);
    for (let i = 0; i < 64; i++) assert.equal((await publishText(t.base, user.priv, `{"n":${i},"pad":"${pad}"}`, 3600)).status, 200);
    const own = await eventually(
      'the shortened window in /server-stat/',
      async () => {
        const stats = (await (await fetch(`${t.base}/server-stat/`)).json()) as Stat[];
        const mine = stats.find((s) => s.processUniqueId === t.config.processUniqueId);
        return mine?.jetpull?.warnings.length ? mine : undefined;
      },
      10_000,
      200,
    );
    assert.equal(typeof own.jetpull!.replayWindowSec, 'number');
    assert.match(own.jetpull!.warnings[0]!, /replay window .* shorter than storage\.messageTtlSec/);
    assert.ok(t.logs.find('replay window shorter than storage.messageTtlSec: the stream byte limit drops messages early; raise storage.streamMaxBytes').length >= 1);
    const metrics = await (await fetch(`http://127.0.0.1:${t.app.adminAddress!.port}/metrics`)).text();
    assert.match(metrics, /^jetpull_replay_window_seconds\{[^}]*\} \d+/m);
    assert.match(metrics, /^jetpull_stream_bytes\{[^}]*\} \d+/m);
  });
});
