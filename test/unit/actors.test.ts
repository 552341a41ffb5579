import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Actor } from '../../src/actors/actor.ts';
import { Mailbox } from '../../src/actors/mailbox.ts';

const silent = pino({ level: 'silent' });

describe('mailbox', () => {
  it('is FIFO and refuses beyond its capacity', async () => {
    const box = new Mailbox<number>(3);
    assert.ok(box.push(1) && box.push(2) && box.push(3));
    assert.equal(box.push(4), false);
    assert.deepEqual([await box.next(), await box.next(), await box.next()], [1, 2, 3]);
    assert.ok(box.push(5));
    assert.equal(await box.next(), 5);
  });

  it('hands an item straight to a waiting consumer, and ends after close once drained', async () => {
    const box = new Mailbox<string>(2);
    const waiting = box.next();
    box.push('a');
    assert.equal(await waiting, 'a');
    box.push('b');
    box.close();
    assert.equal(box.push('c'), false);
    assert.equal(await box.next(), 'b');
    assert.equal(await box.next(), undefined);
  });

  it('rejects a capacity that is not a positive integer', () => {
    assert.throws(() => new Mailbox(0), RangeError);
  });
});

class Recorder extends Actor<{ type: 'add'; n: number } | { type: 'boom' }> {
  seen: number[] = [];
  crashes = 0;
  constructor(capacity: number, private readonly gate?: Promise<void>) {
    super(silent, capacity);
  }
  protected async handle(msg: { type: 'add'; n: number } | { type: 'boom' }): Promise<void> {
    if (msg.type === 'boom') throw new Error('boom');
    await this.gate;
    this.seen.push(msg.n);
  }
  protected override onCrash(): void {
    this.crashes++;
  }
}

describe('actor', () => {
  it('handles messages one at a time in order, and stop() drains the mailbox first', async () => {
    const a = new Recorder(10);
    assert.equal(a.tell({ type: 'add', n: 0 }), false, 'not running yet');
    await a.start();
    for (let i = 1; i <= 5; i++) assert.ok(a.tell({ type: 'add', n: i }));
    const stopped = a.stop();
    assert.equal(a.stop(), stopped, 'stop returns the same promise');
    await stopped;
    assert.deepEqual(a.seen, [1, 2, 3, 4, 5]);
    assert.equal(a.state, 'stopped');
    assert.equal(a.tell({ type: 'add', n: 6 }), false);
  });

  it('pushes back: while a message is being handled the mailbox fills and tell returns false', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const a = new Recorder(2, gate);
    await a.start();
    assert.ok(a.tell({ type: 'add', n: 1 }));
    await new Promise((r) => setImmediate(r));
    assert.ok(a.tell({ type: 'add', n: 2 }));
    assert.ok(a.tell({ type: 'add', n: 3 }));
    assert.equal(a.tell({ type: 'add', n: 4 }), false);
    open();
    await a.stop();
    assert.deepEqual(a.seen, [1, 2, 3]);
  });

  it('survives an exception in handle: it is reported once and the next message is handled', async () => {
    const a = new Recorder(10);
    await a.start();
    a.tell({ type: 'boom' });
    a.tell({ type: 'add', n: 7 });
    await a.stop();
    assert.equal(a.crashes, 1);
    assert.deepEqual(a.seen, [7]);
  });
});
