import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryWatermarkBytes } from '../../src/config/derived.ts';
import { parseConfig } from '../../src/config/load.ts';
import { AddressTable } from '../../src/gateway/address-table.ts';
import { MemoryWatermark } from '../../src/gateway/memory-watermark.ts';
import { OutboundBudget, type OutboundQueue } from '../../src/gateway/outbound-budget.ts';
import { addressKey } from '../../src/http/client-address.ts';
import { createRootLogger } from '../../src/log/logger.ts';
import { LogSink } from '../helpers/log-sink.ts';

const GiB = 1_073_741_824;

function logger(): { log: ReturnType<typeof createRootLogger>; sink: LogSink } {
  const sink = new LogSink();
  return { log: createRootLogger({ level: 'info', processUniqueId: 't', version: 't' }, sink), sink };
}

describe('addressKey', () => {
  it('keeps IPv4 addresses, unwraps IPv4-mapped ones and groups IPv6 by /64', () => {
    assert.equal(addressKey('198.51.100.7'), '198.51.100.7');
    assert.equal(addressKey('::ffff:198.51.100.7'), '198.51.100.7');
    assert.equal(addressKey('2001:db8:1:2::10'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey(''), '');
  });
});

describe('AddressTable', () => {
  const limits = { maxConnections: 3, maxConnectionsPerIp: 2, maxNewConnectionsPerIpPerSec: 2, newConnectionsPerIpBurst: 3 };

  it('counts open connections per address and in all', () => {
    const t = new AddressTable(limits, 0);
    t.enter('a', 0);
    assert.equal(t.refusesOpen('a'), undefined);
    t.enter('a', 0);
    assert.equal(t.refusesOpen('a'), 'connections-per-ip');
    assert.equal(t.refusesOpen('b'), undefined);
    t.enter('b', 0);
    assert.equal(t.refusesOpen('c'), 'connections');
    t.leave('a');
    assert.equal(t.refusesOpen('a'), undefined);
    t.leave('zzz');
    assert.equal(t.connections, 2);
  });

  it('gives each address its burst, then its rate', () => {
    const t = new AddressTable(limits, 0);
    assert.deepEqual([1, 2, 3, 4].map(() => t.takeToken('a', 0)), [true, true, true, false]);
    assert.equal(t.takeToken('b', 0), true);
    assert.equal(t.takeToken('a', 400), false);
    assert.equal(t.takeToken('a', 500), true);
  });

  it('forgets addresses without connections once their burst is back, and keeps the others', () => {
    const t = new AddressTable(limits, 0);
    for (let i = 0; i < 100; i++) t.takeToken(`idle-${i}`, 0);
    t.takeToken('busy', 0);
    t.enter('busy', 0);
    t.takeToken('recent', 9_900);
    t.takeToken('x', 10_000);
    assert.equal(t.addresses, 3);
    assert.equal(t.refusesOpen('busy'), undefined);
    t.enter('busy', 10_000);
    assert.equal(t.refusesOpen('busy'), 'connections-per-ip');
  });
});

describe('memoryWatermarkBytes', () => {
  it('is the setting when given, else 85 % of the container limit or the RAM, shared by the workers', () => {
    assert.equal(memoryWatermarkBytes(parseConfig({ gateway: { memoryWatermarkBytes: 123 } }), 8 * GiB, 0), 123);
    assert.equal(memoryWatermarkBytes(parseConfig({}), 8 * GiB, 0), Math.floor(8 * GiB * 0.85));
    assert.equal(memoryWatermarkBytes(parseConfig({}), 8 * GiB, 2 ** 64), Math.floor(8 * GiB * 0.85));
    assert.equal(memoryWatermarkBytes(parseConfig({}), 8 * GiB, 2 * GiB), Math.floor(2 * GiB * 0.85));
    assert.equal(memoryWatermarkBytes(parseConfig({ workers: 4 }), 8 * GiB, 0), Math.floor((8 * GiB * 0.85) / 4));
  });
});

describe('MemoryWatermark', () => {
  it('is high from the first sample above the watermark to the first below 90 % of it, logging each crossing once', () => {
    const { log, sink } = logger();
    let rss = 500;
    const m = new MemoryWatermark(1_000, log, () => rss);
    const seen: boolean[] = [];
    for (const v of [900, 1_001, 1_200, 950, 901, 899, 950, 1_001]) {
      rss = v;
      m.check();
      seen.push(m.isHigh);
    }
    assert.deepEqual(seen, [false, true, true, true, true, false, false, true]);
    assert.equal(sink.find('memory above the watermark, refusing new connections').length, 2);
    assert.equal(sink.find('memory back below the watermark, taking new connections').length, 1);
  });
});

describe('OutboundBudget', () => {
  class Queue implements OutboundQueue {
    closed = false;
    constructor(
      public bytes: number,
      private readonly budget: () => OutboundBudget,
    ) {}
    recount(): number {
      return this.bytes;
    }
    closeOverBudget(): void {
      this.closed = true;
      this.budget().note(-this.bytes);
      this.bytes = 0;
    }
  }

  it('past the budget closes the largest queues until the rest fit, once the real sum is counted', async () => {
    const { log, sink } = logger();
    const queues: Queue[] = [];
    const budget = new OutboundBudget(100, () => queues.filter((q) => !q.closed), log);
    for (const b of [30, 60, 20, 50]) queues.push(new Queue(b, () => budget));
    budget.note(160);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(queues.map((q) => q.closed), [false, true, false, false]);
    assert.equal(budget.queuedBytes, 100);
    assert.equal(sink.find('outbound buffer limit reached, closing the slowest connections').length, 1);
  });

  it('an estimate over the budget whose queues drained meanwhile closes nothing', async () => {
    const { log, sink } = logger();
    const queues: Queue[] = [];
    const budget = new OutboundBudget(100, () => queues, log);
    queues.push(new Queue(10, () => budget), new Queue(10, () => budget));
    budget.note(500);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(queues.map((q) => q.closed), [false, false]);
    assert.equal(budget.queuedBytes, 20);
    assert.equal(sink.lines.length, 0);
  });
});
