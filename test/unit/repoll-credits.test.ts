import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RepollCredits } from '../../src/gateway/repoll-credits.ts';

describe('long-poll re-poll credits', () => {
  const keys = ['priv.a', 'priv.b'];
  const mid = '17953159400000000000000001';

  it('an answer grants one free poll for its channels and mid, within the grace only', () => {
    const c = new RepollCredits(1_000);
    c.grant(keys, mid, 0);
    assert.equal(c.take(keys, '17953159400000000000000002', 10), false, 'another mid');
    assert.equal(c.take(['priv.a'], mid, 10), false, 'other channels');
    assert.equal(c.take(keys, mid, 10), true);
    assert.equal(c.take(keys, mid, 20), false, 'spent');
    c.grant(keys, mid, 100);
    assert.equal(c.take(keys, mid, 1_100), false, 'lapsed');
    assert.equal(c.size, 0);
  });

  it('two answers with one mid (two tabs of a user) grant two; lapsed entries go on the next grant', () => {
    const c = new RepollCredits(1_000);
    c.grant(keys, mid, 0);
    c.grant(keys, mid, 1);
    c.grant(['priv.c'], '', 2);
    assert.equal(c.take(keys, mid, 3), true);
    assert.equal(c.take(keys, mid, 4), true);
    assert.equal(c.take(keys, mid, 5), false);
    c.grant(['priv.d'], '', 5_000);
    assert.equal(c.size, 1);
  });

  it('a grace of 0 grants nothing', () => {
    const c = new RepollCredits(0);
    c.grant(keys, mid, 0);
    assert.equal(c.take(keys, mid, 0), false);
    assert.equal(c.size, 0);
  });
});
