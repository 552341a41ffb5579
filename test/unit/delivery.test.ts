import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { joinedFrame, type Delivery } from '../../src/gateway/delivery.ts';
import { delivery } from '../helpers/session-harness.ts';

const concat = (list: Delivery[], format: 'text' | 'binary'): Buffer => Buffer.concat(list.map((d) => d.chunk(format)));

describe('joinedFrame', () => {
  it('hands connections that gathered the same messages one shared buffer', () => {
    const burst = [delivery(1), delivery(2), delivery(3)];
    const a = joinedFrame(burst.slice(), 'text');
    const b = joinedFrame(burst.slice(), 'text');
    assert.equal(a, b, 'the same Buffer object');
    assert.deepEqual(a, concat(burst, 'text'));
  });

  it('builds its own frame for a different run from the same first message', () => {
    const [d1, d2, d3, other] = [delivery(1), delivery(2), delivery(3), delivery(9, { key: 'priv.00000000000000000000000000000002' })];
    const shared = joinedFrame([d1!, d2!, d3!], 'text');
    const mixed = joinedFrame([d1!, other!, d3!], 'text');
    assert.notEqual(mixed, shared);
    assert.deepEqual(mixed, concat([d1!, other!, d3!], 'text'));
    assert.deepEqual(joinedFrame([d1!, d2!], 'text'), concat([d1!, d2!], 'text'));
    assert.equal(joinedFrame([d1!, d2!, d3!], 'text'), shared, 'the first run stays shared');
  });

  it('keeps text and binary runs apart', () => {
    const burst = [delivery(1), delivery(2)];
    const text = joinedFrame(burst, 'text');
    const binary = joinedFrame(burst, 'binary');
    assert.deepEqual(text, concat(burst, 'text'));
    assert.deepEqual(binary, concat(burst, 'binary'));
  });

  it('a single message is its own chunk', () => {
    const d = delivery(5);
    assert.equal(joinedFrame([d], 'binary'), d.chunk('binary'));
  });
});
