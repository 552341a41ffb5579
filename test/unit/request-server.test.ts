import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createRootLogger } from '../../src/log/logger.ts';
import { serveRequests } from '../../src/nats/request-server.ts';
import { LogSink } from '../helpers/log-sink.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { eventually } from '../helpers/wait.ts';

describe('request server', () => {
  let nats: TestNats;
  let client: NatsConnection;
  before(async () => {
    nats = await startTestNats();
    client = await connect({ servers: nats.url });
  });
  after(async () => {
    await client.close();
    await nats.stop();
  });

  it('answers requests of the queue group', async () => {
    const nc = await connect({ servers: nats.url });
    const served = serveRequests(nc, 'test.echo', 'q', async (data) => `echo:${new TextDecoder().decode(data)}`, createRootLogger({ level: 'silent', processUniqueId: 't', version: 't' }));
    // The subscription reaches the server with the next flush: ask only after it did.
    await nc.flush();
    const reply = await client.request('test.echo', 'hi', { timeout: 2_000 });
    assert.equal(reply.string(), 'echo:hi');
    served.stop();
    await nc.close();
  });

  it('a reply that cannot be sent (larger than the server takes) is logged, never thrown', async () => {
    const logs = new LogSink();
    const nc = await connect({ servers: nats.url });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => void unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const tooLarge = 'x'.repeat((nc.info?.max_payload ?? 1 << 20) + 1);
      const served = serveRequests(nc, 'test.big', 'q', async () => tooLarge, createRootLogger({ level: 'debug', processUniqueId: 't', version: 't' }, logs));
      await nc.flush();
      await client.request('test.big', 'x', { timeout: 500 }).catch(() => undefined);
      await eventually('the reply to be given up', () => logs.find('reply not sent').length === 1, 3_000);
      assert.deepEqual(unhandled, []);
      served.stop();
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await nc.close();
    }
  });
});
