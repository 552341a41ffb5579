import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StreamReadError } from '../../src/errors/app-error.ts';
import { newId } from '../helpers/channels.ts';
import { StreamFixture } from '../helpers/stream-fixture.ts';

/**
 * A read that fails for a reason that may pass (NATS away, a frozen server, a stream
 * without a leader) is a StreamReadError, temporary: a publish whose duplicate check
 * reads the stream answers 503 (retry, stored once) instead of a 500 that makes the
 * caller give up on a message that may well be stored.
 */
describe('stream reader failures', () => {
  let f: StreamFixture;
  let key: string;
  let seq: number;
  before(async () => {
    f = await StreamFixture.start();
    key = `priv.${newId()}`;
    seq = await f.store(key);
  });
  after(async () => {
    await f.server.resume().catch(() => undefined);
    await f.stop();
  });

  it('answers a read that cannot be served as a temporary StreamReadError', async () => {
    assert.equal((await f.reader.at(seq))?.seq, seq);
    await f.server.pause();
    try {
      for (const read of [() => f.reader.at(seq), () => f.reader.last(key), () => f.reader.position()]) {
        await assert.rejects(read(), (err: unknown) => {
          assert.ok(err instanceof StreamReadError, `a StreamReadError, not ${String(err)}`);
          assert.equal(err.temporary, true);
          assert.equal(err.httpStatus, 503);
          return true;
        });
      }
    } finally {
      await f.server.resume();
    }
    assert.equal((await f.reader.at(seq))?.seq, seq, 'reads work again once the server answers');
  });
});
