import assert from 'node:assert/strict';
import { it } from 'node:test';
import { startTestApp } from '../../helpers/app.ts';
import { publishText } from '../../helpers/backend.ts';
import { newUser } from '../../helpers/channels.ts';
import { startTestNats } from '../../helpers/nats-server.ts';
import { openWs } from '../../helpers/ws-client.ts';
import type { SuiteContext } from '../context.ts';
import { record } from '../timings.ts';

/**
 * The container path of test/helpers/nats-server.ts, for real: the same helper the
 * integration tests use, switched to testcontainers with the stand-in NATS image on
 * this run's engine, serving a whole jetpull; then its kill/start and pause/resume.
 */
export function testcontainersChecks(ctx: SuiteContext): void {
  it('the test helper starts NATS through testcontainers; jetpull runs on it; the store survives kill and start', async () => {
    const image = ctx.settings.compose.natsImage;
    assert.ok(image, 'JETPULL_TEST_NATS_IMAGE names the stand-in NATS image');
    assert.ok(process.env.DOCKER_HOST, 'DOCKER_HOST names the engine');
    const saved = { backend: process.env.JETPULL_TEST_NATS, image: process.env.JETPULL_TEST_NATS_IMAGE, ryuk: process.env.TESTCONTAINERS_RYUK_DISABLED };
    process.env.JETPULL_TEST_NATS = 'container';
    process.env.JETPULL_TEST_NATS_IMAGE = image;
    // The resource reaper is an image of its own, which no registry here can give.
    process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
    const started = Date.now();
    const nats = await startTestNats();
    record('testcontainers: NATS container started', Date.now() - started);
    try {
      assert.equal(nats.backend, 'container');
      const t = await startTestApp(nats.url);
      try {
        const user = newUser();
        const ws = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
        assert.equal((await publishText(t.base, user.priv, '{"n":1}', 60)).status, 200);
        await ws.waitFrames(1);
        ws.close();
        await nats.pause();
        await nats.resume();
        await nats.kill();
        await nats.start();
        // As the official client does: a replay refused while JetStream recovers (4011) is asked again.
        const deadline = Date.now() + 30_000;
        let got = 0;
        while (got === 0 && Date.now() < deadline) {
          const again = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&mid=10000000000000000000000000`);
          await Promise.race([again.waitFrames(1, 5_000).catch(() => undefined), again.closed]);
          got = again.frames.length;
          again.close();
          if (got === 0) await new Promise((r) => setTimeout(r, 500));
        }
        assert.equal(got, 1, 'the message stored before the kill is replayed after the start');
      } finally {
        await t.stop();
      }
    } finally {
      await nats.stop();
      restore('JETPULL_TEST_NATS', saved.backend);
      restore('JETPULL_TEST_NATS_IMAGE', saved.image);
      restore('TESTCONTAINERS_RYUK_DISABLED', saved.ryuk);
    }
  });
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
