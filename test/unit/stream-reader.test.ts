import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MESSAGE_STREAM } from '../../streams/index.ts';
import { newId } from '../helpers/channels.ts';
import { StreamFixture } from '../helpers/stream-fixture.ts';

/** The stream reader on a real nats-server: walks, newest messages, positions, and scans. */
describe('stream reader', () => {
  let f: StreamFixture;
  let a: string;
  let aSeqs: number[];
  before(async () => {
    f = await StreamFixture.start();
    a = `priv.${newId()}`;
    const b = `priv.${newId()}`;
    aSeqs = [];
    for (let i = 0; i < 600; i++) {
      const [sa] = await Promise.all([f.store(a), f.store(b)]);
      aSeqs.push(sa);
    }
    aSeqs.sort((x, y) => x - y);
  });
  after(() => f.stop());

  const walk = async (batchDirectGet: boolean): Promise<{ seqs: number[]; reads: number }> => {
    const reader = f.nats.streamReader(MESSAGE_STREAM, { replicas: 1, batchDirectGet });
    const seqs: number[] = [];
    for await (const m of reader.after(a, aSeqs[9]!)) seqs.push(m.seq);
    return { seqs, reads: reader.reads };
  };

  it('walks one channel from a position, in order, one direct get per message', async () => {
    const { seqs, reads } = await walk(false);
    assert.deepEqual(seqs, aSeqs.slice(10));
    assert.equal(reads, seqs.length + 1, 'one get per message, and one that finds the end');
  });

  it('walks the same in batches where the server answers batched direct gets (2.11+), with few requests', async (t) => {
    if (!f.nats.serverAtLeast(2, 11)) {
      t.diagnostic(`nats-server ${f.server.url}: no batched direct get; the per-message walk above is the path in use`);
      assert.equal(f.nats.serverAtLeast(2, 11), false);
      return;
    }
    const { seqs, reads } = await walk(true);
    assert.deepEqual(seqs, aSeqs.slice(10));
    assert.ok(reads <= Math.ceil(seqs.length / 256) + 1, `${reads} requests for ${seqs.length} messages`);
  });

  it('answers a channel\'s newest message, and a scan visits every wanted message once in order', async () => {
    const reader = f.nats.streamReader(MESSAGE_STREAM);
    assert.equal((await reader.last(a))!.seq, aSeqs.at(-1));
    const seen: number[] = [];
    const upTo = await reader.scan(aSeqs[99]!, (key) => key === a, (m) => seen.push(m.seq));
    assert.deepEqual(seen, aSeqs.slice(100));
    assert.ok(upTo >= aSeqs.at(-1)!);
  });
});
