import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';

/**
 * `/server-stat/` lists the other processes from the stats bucket, and reading the
 * bucket's keys is a consumer the server drives. When NATS does not answer (frozen, a
 * leader election) the route must still answer with this process's own entry within
 * a bounded time, never hold the request until the HTTP client gives up.
 */

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url);
});
after(async () => {
  await nats?.resume().catch(() => undefined);
  await t?.stop();
  await nats?.stop();
});

describe('/server-stat/ while NATS does not answer', () => {
  it('answers 200 with its own entry within a few seconds', async () => {
    await nats.pause();
    try {
      const started = Date.now();
      const res = await fetch(`${t.base}/server-stat/`, { signal: AbortSignal.timeout(20_000) });
      const took = Date.now() - started;
      assert.equal(res.status, 200);
      const stats = (await res.json()) as Array<{ processUniqueId: string }>;
      assert.deepEqual(stats.map((s) => s.processUniqueId), [t.config.processUniqueId]);
      assert.ok(took < 4_000, `answered after ${took} ms`);
    } finally {
      await nats.resume();
    }
  });
});
