import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { headers as clientHeaders } from '@nats-io/transport-node';
import fc from 'fast-check';
import { batchHeaders } from '../../src/nats/atomic-batch.ts';
import { parsePubAck, plainAck } from '../../src/nats/pub-ack.ts';
import { PublishHeaders } from '../../src/nats/publish-headers.ts';
import { newPublishId, writeHeaders, type WriteMeta } from '../../src/nats/stored-message.ts';
import { storedSubject } from '../../src/nats/subjects.ts';
import { newId } from '../helpers/channels.ts';
import { StreamFixture } from '../helpers/stream-fixture.ts';

/** The client's own rendering of the same headers, set one by one. */
function rendered(pairs: readonly string[]): string {
  const h = clientHeaders();
  for (let i = 0; i < pairs.length; i += 2) h.set(pairs[i]!, pairs[i + 1]!);
  return Buffer.from((h as unknown as { encode(): Uint8Array }).encode()).toString('utf8');
}

const text = (h: unknown): string => Buffer.from((h as { encode(): Uint8Array }).encode()).toString('utf8');

describe('publish headers', () => {
  it('render the bytes the client renders, values checked and trimmed as the client does', () => {
    const cases: string[][] = [
      ['Nats-Msg-Id', 'abc'],
      ['Jp-Expiry', '60', 'Jp-Sender', 'ffaa', 'Nats-Msg-Id', 'k:  spaced key  ', 'Nats-Batch-Id', 'b1'],
      ['Jp-Hash', 'ümlaut ключ 🙂', 'Nats-Msg-Id', 'x'],
    ];
    for (const pairs of cases) assert.equal(text(new PublishHeaders(pairs)), rendered(pairs));
    assert.throws(() => new PublishHeaders(['Nats-Msg-Id', 'a\r\nInjected: 1']), /cannot contain/);
    assert.throws(() => clientHeaders().set('Nats-Msg-Id', 'a\nb'), /cannot contain/);
  });

  it('read as headers, and render again after a change', () => {
    const h = new PublishHeaders(['Jp-Expiry', '60', 'Nats-Msg-Id', 'id-1']);
    assert.equal(h.get('Nats-Msg-Id'), 'id-1');
    assert.ok(h.has('Jp-Expiry'));
    h.set('Nats-Msg-Id', 'id-2');
    h.append('Jp-Pub', 'p');
    h.delete('Jp-Expiry');
    assert.equal(text(h), rendered(['Nats-Msg-Id', 'id-2', 'Jp-Pub', 'p']));
  });

  it('of a copy: metadata, message id, then the batch headers, in the order the reader expects', () => {
    const meta: WriteMeta = { expirySec: 60, senderId: 'ab', pubId: 'P', firstSeq: 7, firstOffset: 2, firstKey: 'priv.x', hash: 'h', ttlSec: 90 };
    const expected = [
      'Jp-Expiry', '60', 'Jp-Sender', 'ab', 'Jp-Pub', 'P', 'Jp-First', '7', 'Jp-First-Offset', '2', 'Jp-First-Key', 'priv.x', 'Jp-Hash', 'h', 'Nats-TTL', '90s',
      'Nats-Msg-Id', 'P.1', 'Nats-Batch-Id', 'B', 'Nats-Batch-Sequence', '2', 'Nats-Batch-Commit', '1',
    ];
    assert.equal(text(writeHeaders(meta, 'P.1', batchHeaders('B', 1, 2))), rendered(expected));
    assert.equal(text(writeHeaders({ expirySec: 0 }, 'only')), rendered(['Nats-Msg-Id', 'only']));
    assert.deepEqual(batchHeaders('B', 0, 2), ['Nats-Batch-Id', 'B', 'Nats-Batch-Sequence', '1']);
  });
});

/** What the writer takes from an answer: JSON.parse's reading, in the writer's terms. */
function reading(r: ReturnType<typeof parsePubAck>): unknown {
  return { seq: r.seq, duplicate: r.duplicate === true, count: r.count, error: r.error };
}

function viaJson(bytes: Uint8Array): unknown {
  return reading(JSON.parse(Buffer.from(bytes).toString('utf8')) as ReturnType<typeof parsePubAck>);
}

describe('acknowledgements', () => {
  it('reads the plain answers from the bytes and everything else as JSON', () => {
    const enc = (s: string): Uint8Array => Buffer.from(s);
    assert.deepEqual(plainAck(enc('{"stream":"PUSH_MESSAGES","seq":42}')), { seq: 42, duplicate: false });
    assert.deepEqual(plainAck(enc('{"stream":"PUSH_MESSAGES","seq":42,"duplicate":true}')), { seq: 42, duplicate: true });
    // As 2.9 and 2.15 space them.
    assert.deepEqual(plainAck(enc('{"stream":"PUSH_MESSAGES", "seq":7}')), { seq: 7, duplicate: false });
    assert.deepEqual(plainAck(enc('{"stream":"PUSH_MESSAGES", "seq":7,"duplicate": true}')), { seq: 7, duplicate: true });
    assert.deepEqual(plainAck(enc('{"stream":"PUSH_MESSAGES","seq":7,"duplicate": true}')), { seq: 7, duplicate: true });
    for (const other of [
      '{"stream":"S","seq":3,"domain":"hub"}',
      '{"stream":"S","seq":3,"batch":"b","count":2}',
      '{"error":{"code":503,"err_code":10077,"description":"x"}}',
      '{"stream":"S\\u0041","seq":3}',
      '{"stream":"S","seq":03}',
      '{"stream":"S","seq":1234567890123456}',
      '{"stream":"S","seq":3.5}',
      '{"stream":"S","seq":3,"duplicate":false}',
      '{"seq":3,"stream":"S"}',
    ]) {
      assert.equal(plainAck(enc(other)), undefined, other);
    }
    assert.deepEqual(reading(parsePubAck(enc('{"stream":"S","seq":3,"batch":"b","count":2}'))), { seq: 3, duplicate: false, count: 2, error: undefined });
    assert.throws(() => parsePubAck(enc('{"stream":"S","seq":')), SyntaxError);
  });

  it('reads any answer as JSON.parse does (property)', () => {
    const answer = fc.oneof(
      fc.record({ stream: fc.string(), seq: fc.nat(), duplicate: fc.constantFrom(undefined, true, false) }).map((a) => JSON.stringify(a)),
      fc.record({ stream: fc.string({ unit: 'binary' }), seq: fc.maxSafeNat() }).map((a) => JSON.stringify(a)),
      fc.string().map((s) => `{"stream":"${s}","seq":${s}}`),
      fc.tuple(fc.constantFrom('', ' ', '\n', '\t '), fc.nat(), fc.boolean()).map(([w, n, d]) => `${w}{${w}"stream"${w}:${w}"S"${w},${w}"seq"${w}:${w}${n}${d ? `${w},${w}"duplicate"${w}:${w}true` : ''}${w}}${w}`),
      fc.string(),
    );
    fc.assert(
      fc.property(answer, (s) => {
        const bytes = Buffer.from(s);
        let expected: unknown;
        try {
          expected = viaJson(bytes);
        } catch {
          assert.throws(() => parsePubAck(bytes));
          return;
        }
        const fast = plainAck(bytes);
        if (fast !== undefined) assert.deepEqual(reading(fast), expected);
        assert.deepEqual(reading(parsePubAck(bytes)), expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('publish headers and answers on a real nats-server', () => {
  let f: StreamFixture;
  before(async () => {
    f = await StreamFixture.start();
  });
  after(() => f.stop());

  it("answers a write and its duplicate in the plain form the fast path reads, and stores the copy's headers", async () => {
    const key = `priv.${newId()}`;
    const msgId = newPublishId();
    const hdrs = writeHeaders({ expirySec: 60, pubId: 'P1', hash: 'abc' }, msgId);
    const first = await f.nats.link.nc.request(storedSubject(key), Buffer.from('body'), { timeout: 5_000, headers: hdrs });
    const again = await f.nats.link.nc.request(storedSubject(key), Buffer.from('body'), { timeout: 5_000, headers: writeHeaders({ expirySec: 60, pubId: 'P1', hash: 'abc' }, msgId) });
    const a = plainAck(first.data);
    assert.ok(a !== undefined, `not the plain form: ${Buffer.from(first.data).toString()}`);
    assert.deepEqual(plainAck(again.data), { seq: a.seq, duplicate: true }, Buffer.from(again.data).toString());
    const stored = await f.reader.at(a.seq!);
    assert.ok(stored !== null);
    assert.equal(stored.key, key);
    assert.equal(stored.expirySec, 60);
    assert.equal(stored.pubId, 'P1');
    assert.equal(stored.hash, 'abc');
    assert.equal(Buffer.from(stored.body).toString(), 'body');
  });
});
