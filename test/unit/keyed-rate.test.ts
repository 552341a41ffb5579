import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedRate } from '../../src/util/keyed-rate.ts';

describe('rate per key', () => {
  it('each key has its own bucket; over it, the wait until the next token', () => {
    const r = new KeyedRate(2, 2, 0);
    assert.equal(r.take('a', 0), 0);
    assert.equal(r.take('a', 0), 0);
    assert.equal(r.take('a', 0), 500);
    assert.equal(r.take('a', 100), 400, 'nothing was taken by the refused call');
    assert.equal(r.take('b', 100), 0);
    assert.equal(r.take('a', 500), 0);
  });

  it('drops buckets that filled up again, keeps the ones still spent', () => {
    const r = new KeyedRate(1, 1, 0);
    r.take('idle', 0);
    r.take('busy', 9_500);
    assert.equal(r.size, 2);
    r.take('new', 10_000);
    assert.equal(r.size, 2, 'idle is dropped, busy (spent 0.5 s ago) kept');
    assert.equal(r.take('busy', 10_000), 500);
  });
});
