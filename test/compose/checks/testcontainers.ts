import assert from 'node:assert/strict';
import { it } from 'node:test';
import { freePort } from '../../helpers/nats-server.ts';
import type { SuiteContext } from '../context.ts';
import { record } from '../timings.ts';

/**
 * test/helpers/nats-server.ts's container path, as it builds its container, on this
 * run's engine (DOCKER_HOST) with the stand-in NATS image instead of nats:2.10-alpine:
 * what that helper needs to use a local image for real.
 */
export function testcontainersChecks(ctx: SuiteContext): void {
  const image = ctx.settings.compose.natsImage;

  it('testcontainers runs the stand-in NATS image (NatsContainer, JetStream): a publish is acknowledged and survives pause, kill and start', { skip: image ? false : 'no JETPULL_TEST_NATS_IMAGE' }, async () => {
    assert.ok(process.env.DOCKER_HOST, 'DOCKER_HOST names the engine');
    const { NatsContainer } = await import('@testcontainers/nats');
    const { getContainerRuntimeClient } = await import('testcontainers');
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const started = Date.now();
    const port = await freePort();
    // The same calls as startContainer() in test/helpers/nats-server.ts.
    const container = await new NatsContainer(image!)
      .withJetStream()
      .withArg('-sd', '/data')
      .withExposedPorts({ container: 4222, host: port })
      .start();
    record('testcontainers: NatsContainer started (log "Server is ready")', Date.now() - started);
    try {
      const opts = container.getConnectionOptions();
      const server = { servers: `127.0.0.1:${port}`, user: opts.user, pass: opts.pass };
      let nc = await connect(server);
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({ name: 'E2E', subjects: ['e2e.>'] });
        const ack = await jetstream(nc).publish('e2e.one', 'hello');
        assert.equal(ack.stream, 'E2E');
        assert.equal(ack.seq, 1);
      } finally {
        await nc.close();
      }
      // The helper's pause()/resume() and kill()/start(): the Docker API on the same
      // container, same port and store.
      const docker = (await getContainerRuntimeClient()).container.getById(container.getId());
      await docker.pause();
      await docker.unpause();
      await docker.kill();
      await docker.start();
      nc = await connect({ ...server, reconnect: false, timeout: 10_000 }).catch(async () => {
        await new Promise((r) => setTimeout(r, 1_000));
        return connect(server);
      });
      try {
        const info = await (await jetstreamManager(nc)).streams.info('E2E');
        assert.equal(info.state.messages, 1, 'the message survived kill and start');
      } finally {
        await nc.close();
      }
    } finally {
      await container.stop();
    }
  });
}
