import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ScanWindow } from '../../src/gateway/scan-window.ts';
import type { StoredMessage } from '../../src/nats/stored-message.ts';

const msg = (seq: number, key: string, body: Uint8Array): StoredMessage => ({
  seq,
  key,
  body,
  expirySec: 60,
  timeMs: Date.now(),
  senderId: undefined,
  pubId: undefined,
  firstSeq: undefined,
  prevSeq: undefined,
});

/** A window after one scan of three messages on two channels. */
function scanned(idleMs: number, body = (i: number): Uint8Array => Buffer.from(`{"n":${i}}`)): ScanWindow {
  const w = new ScanWindow(1 << 20, idleMs);
  w.prepare(1);
  w.openAt(0);
  w.append(msg(1, 'priv.a', body(1)));
  w.append(msg(2, 'priv.b', body(2)));
  w.append(msg(3, 'priv.a', body(3)));
  w.advanceTo(3);
  return w;
}

describe('scan window', () => {
  it('lets go of everything once unused for its idle time, without being asked again', async () => {
    const w = scanned(100);
    assert.ok(w.bytes > 0);
    assert.deepEqual(w.read('priv.a', 0, 10).messages.map((m) => m.seq), [1, 3]);
    // The wave is over: nothing calls the window again, and it must not keep the messages until the next one.
    await sleep(600);
    assert.equal(w.bytes, 0);
    assert.equal(w.isOpen, false);
    assert.deepEqual(w.read('priv.a', 0, 10).messages, []);
  });

  it('holds bodies of their own: a body read as a view into a larger buffer does not keep that buffer', () => {
    // The NATS client hands out bodies as views into its read buffers.
    const chunk = Buffer.alloc(256 * 1024, 0x78);
    const w = scanned(60_000, (i) => chunk.subarray(i * 1000, i * 1000 + 200));
    const held = w.read('priv.a', 0, 10).messages;
    assert.equal(held.length, 2);
    for (const m of held) {
      assert.deepEqual(Buffer.from(m.body), chunk.subarray(m.seq * 1000, m.seq * 1000 + 200));
      assert.equal(m.body.buffer.byteLength, m.body.byteLength, 'the window counts the body, so it holds no more than the body');
    }
    w.clear();
  });
});
