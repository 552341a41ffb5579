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

  it('a walk with nothing after its start, or ending where a batch ends, ends without an error', async () => {
    const c = `priv.${newId()}`;
    const cSeqs: number[] = [];
    for (let i = 0; i < 257; i++) cSeqs.push(await f.store(c));
    const paths = f.nats.serverAtLeast(2, 11) ? [false, true] : [false];
    for (const batchDirectGet of paths) {
      const reader = f.nats.streamReader(MESSAGE_STREAM, { replicas: 1, batchDirectGet });
      const seqs = async (key: string, from: number): Promise<number[]> => {
        const out: number[] = [];
        for await (const m of reader.after(key, from)) out.push(m.seq);
        return out;
      };
      const path = batchDirectGet ? 'batched' : 'one by one';
      assert.deepEqual(await seqs(`pub.${newId()}`, 0), [], `${path}: a channel without messages`);
      assert.deepEqual(await seqs(a, aSeqs.at(-1)!), [], `${path}: from a channel's newest message`);
      // 256 messages after the start: exactly one full batch, then nothing.
      assert.deepEqual(await seqs(c, cSeqs[0]!), cSeqs.slice(1), `${path}: a walk that ends with a full batch`);
    }
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
