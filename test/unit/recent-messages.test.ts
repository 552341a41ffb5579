import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RecentMessages } from '../../src/gateway/recent-messages.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';

const msg = (key: string, seq: number, bodyBytes = 100, expirySec = 60): StoredMessage => ({
  seq,
  key,
  body: new Uint8Array(bodyBytes),
  expirySec,
  timeMs: Date.now(),
  senderId: undefined,
  pubId: undefined,
  firstSeq: undefined,
  prevSeq: undefined,
});

const seqs = (r: { messages: StoredMessage[] } | undefined): number[] | undefined => r?.messages.map((m) => m.seq);

describe('recent messages', () => {
  it('covers a channel from the point its first recorded message followed, and not before', () => {
    const r = new RecentMessages(1 << 20, 10);
    r.record('a', msg('a', 5), 3);
    r.record('a', msg('a', 7), 5);
    assert.deepEqual(seqs(r.after('a', 3, 10, 7)), [5, 7]);
    assert.deepEqual(seqs(r.after('a', 5, 10, 7)), [7]);
    assert.equal(r.after('a', 2, 10, 7), undefined, 'what came before 3 is not known');
    assert.equal(r.after('b', 0, 10, 0), undefined, 'a channel never recorded');
  });

  it('keeps live-only messages out but stays complete past them', () => {
    const r = new RecentMessages(1 << 20, 10);
    r.record('a', msg('a', 5, 100, 0), 3);
    r.record('a', msg('a', 6), 5);
    assert.deepEqual(seqs(r.after('a', 3, 10, 6)), [6]);
  });

  it('drops the oldest beyond the per-channel count and no longer covers mids before it', () => {
    const r = new RecentMessages(1 << 20, 2);
    for (const s of [5, 6, 7]) r.record('a', msg('a', s), s - 1);
    assert.equal(r.after('a', 4, 10, 7), undefined);
    assert.deepEqual(seqs(r.after('a', 5, 10, 7)), [6, 7]);
  });

  it('caps a read at the limit and says where it stopped', () => {
    const r = new RecentMessages(1 << 20, 10);
    for (const s of [5, 6, 7]) r.record('a', msg('a', s), s - 1);
    const read = r.after('a', 4, 2, 7)!;
    assert.deepEqual(seqs(read), [5, 6]);
    assert.equal(read.capped, true);
    assert.equal(read.lastSeq, 6);
    assert.deepEqual(r.after('a', 4, 3, 9), { key: 'a', messages: read.messages.concat(r.after('a', 6, 1, 9)!.messages), capped: false, lastSeq: 9 });
  });

  it('lets the least recently written channel go when over its bytes, which starts again with its next message', () => {
    const r = new RecentMessages(1_000, 10);
    r.record('a', msg('a', 1, 200), 0);
    r.record('b', msg('b', 2, 200), 0);
    r.record('c', msg('c', 3, 200), 0);
    assert.ok(r.bytes <= 1_000);
    assert.equal(r.after('a', 0, 10, 1), undefined, 'a went first');
    assert.deepEqual(seqs(r.after('c', 0, 10, 3)), [3]);
    r.record('a', msg('a', 4, 200), 1);
    assert.equal(r.after('a', 0, 10, 4), undefined);
    assert.deepEqual(seqs(r.after('a', 1, 10, 4)), [4]);
  });

  it('keeps a copy of the body, not the buffer it was read from', () => {
    const r = new RecentMessages(1 << 20, 10);
    const readBuffer = new Uint8Array(64 * 1024);
    const m = { ...msg('a', 1), body: readBuffer.subarray(10, 20) };
    r.record('a', m, 0);
    const kept = r.after('a', 0, 10, 1)!.messages[0]!.body;
    assert.equal(kept.length, 10);
    assert.notEqual(kept.buffer, readBuffer.buffer);
  });

  it('forgets a channel no longer held, and everything on a new epoch', () => {
    const r = new RecentMessages(1 << 20, 10);
    r.record('a', msg('a', 1), 0);
    r.record('b', msg('b', 2), 0);
    r.forget('a');
    assert.equal(r.after('a', 0, 10, 1), undefined);
    r.clear();
    assert.equal(r.after('b', 0, 10, 2), undefined);
    assert.equal(r.bytes, 0);
  });
});
