import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/errors/close-codes.ts';
import type { WsSession } from '../../src/gateway/ws-session.ts';
import { decodeResponseBatch } from '../helpers/protobuf.ts';
import { delivery, SessionHarness, type WsClientView } from '../helpers/session-harness.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { within } from '../helpers/wait.ts';

/** Lets the current event-loop turn end (the outbox flushes what it gathered then). */
const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Lets the running callback end (what went out at once is written then; the turn goes on). */
const callbackEnd = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

/** The message sequences of each text frame the client got. */
const framed = (client: WsClientView): number[][] => client.frames().map((f) => parseTextFrames(f.data.toString('utf8')).map((m) => m.id));

describe('WebSocket session', () => {
  let h: SessionHarness;
  before(async () => {
    h = await SessionHarness.start();
  });
  after(() => h.close());

  async function live(opts: Parameters<SessionHarness['ws']>[0] = {}): Promise<{ session: WsSession; client: WsClientView }> {
    const pair = await h.ws(opts);
    pair.session.finishSync([]);
    return pair;
  }

  it('a session closed before its socket is bound closes the socket as soon as it arrives', async () => {
    const { session, client } = await h.ws({ closeBeforeBind: CloseCode.ServiceRestart });
    assert.equal(session.isClosed, true);
    const end = await within('the socket to be closed', client.ended, 3_000);
    assert.deepEqual(end, { kind: 'closed', code: CloseCode.ServiceRestart, reason: 'Server restarting.' });
  });

  describe('adaptive coalescing (coalesceWindowMs 0)', () => {
    it('writes a message to an idle socket at once, as its own frame', async () => {
      const { session, client } = await live();
      session.deliver(delivery(1));
      await callbackEnd();
      assert.equal(session.framesSent, 1, 'written when the delivering callback ended, before the turn ended');
      await client.waitFrames(1);
      await turnEnd();
      session.deliver(delivery(2));
      await callbackEnd();
      assert.equal(session.framesSent, 2, 'the next turn finds the socket idle again');
      await client.waitFrames(2);
      assert.deepEqual(framed(client), [[1], [2]]);
    });

    it('joins what one callback delivers into that frame, and what follows in the same turn into one more', async () => {
      const { session, client } = await live();
      for (const seq of [1, 2]) session.deliver(delivery(seq));
      await callbackEnd();
      assert.equal(session.framesSent, 1);
      for (const seq of [3, 4, 5]) session.deliver(delivery(seq));
      await callbackEnd();
      assert.equal(session.framesSent, 1, 'the socket wrote in this turn: the rest waits for its end');
      await turnEnd();
      assert.equal(session.framesSent, 2);
      await client.waitFrames(2);
      assert.deepEqual(framed(client), [
        [1, 2],
        [3, 4, 5],
      ]);
      assert.match(client.frames()[1]!.data.toString(), /^#!NGINXNMS!#.*#!NGINXNME!##!NGINXNMS!#.*#!NGINXNME!##!NGINXNMS!#.*#!NGINXNME!#$/s);
    });

    it('gathers every message that arrives while a write has not drained into one frame', async () => {
      const { session, client } = await live({ maxOutboxBytes: 256 * 1_048_576 });
      client.pause();
      // 32 MiB cannot all go into the kernel's buffers while the client reads nothing.
      const big = Buffer.from(JSON.stringify({ n: 1, pad: 'x'.repeat(32 * 1_048_576) }));
      session.deliver(delivery(1, { body: big }));
      await callbackEnd();
      assert.equal(session.framesSent, 1);
      assert.ok(session.bufferedBytes > 0, 'the first write is still in the socket');
      for (const seq of [2, 3, 4, 5, 6]) {
        session.deliver(delivery(seq));
        await turnEnd();
      }
      assert.equal(session.framesSent, 1, 'nothing more is written before the first write drained');
      client.resume();
      await client.waitFrames(2, 10_000);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(framed(client), [[1], [2, 3, 4, 5, 6]]);
    });

    it('a replay followed by a close in the same callback reaches the client before the close', async () => {
      const { session, client } = await h.ws();
      session.finishSync([delivery(1), delivery(2)], false);
      session.close(CloseCode.TryAgainLater);
      const end = await within('the close', client.ended, 3_000);
      assert.equal(end.kind === 'closed' && end.code, CloseCode.TryAgainLater);
      assert.deepEqual(framed(client), [[1, 2]]);
    });

    it('what was delivered before a close (a drain, say) is written before the close frame', async () => {
      const { session, client } = await live();
      session.deliver(delivery(1));
      await callbackEnd();
      session.deliver(delivery(2));
      session.deliver(delivery(3));
      session.close(CloseCode.ServiceRestart);
      const end = await within('the close', client.ended, 3_000);
      assert.equal(end.kind === 'closed' && end.code, CloseCode.ServiceRestart);
      assert.deepEqual(client.seqs(), [1, 2, 3]);
    });

    it('keeps a joined frame within coalesceMaxMessages', async () => {
      const { session, client } = await live({ coalesceBounds: { maxBytes: 65_536, maxMessages: 3 } });
      for (let seq = 1; seq <= 8; seq++) session.deliver(delivery(seq));
      await turnEnd();
      await client.waitFrames(3);
      assert.deepEqual(framed(client), [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8],
      ]);
    });

    it('keeps a joined frame within coalesceMaxBytes; a larger message goes alone', async () => {
      const chunk = delivery(2).chunk('text').length;
      const maxBytes = Math.floor(2.5 * chunk);
      const { session, client } = await live({ coalesceBounds: { maxBytes, maxMessages: 256 } });
      const large = Buffer.from(JSON.stringify({ n: 6, pad: 'y'.repeat(maxBytes) }));
      for (let seq = 1; seq <= 7; seq++) session.deliver(delivery(seq, seq === 6 ? { body: large } : {}));
      await turnEnd();
      await client.waitFrames(5);
      assert.deepEqual(framed(client), [[1, 2], [3, 4], [5], [6], [7]]);
      for (const f of client.frames()) if (f.data.length > maxBytes) assert.equal(parseTextFrames(f.data.toString()).length, 1);
    });

    it('binary mode: a frame is one ResponseBatch with a Response per message', async () => {
      const { session, client } = await live({ format: 'binary' });
      session.deliver(delivery(1));
      await callbackEnd();
      for (const seq of [2, 3]) session.deliver(delivery(seq));
      await turnEnd();
      const frames = await client.waitFrames(2);
      assert.ok(frames.every((f) => f.binary));
      const batches = frames.map((f) => decodeResponseBatch(f.data));
      assert.deepEqual(
        batches.map((b) => b.map((r) => r.outgoingMessages!.map((m) => JSON.parse(m.body).n))),
        [[[1]], [[2], [3]]],
      );
    });
  });

  describe('fixed window (coalesceWindowMs > 0)', () => {
    it('writes the first message at once and the ones within the window together when it ends', async () => {
      const { session, client } = await live({ coalesceWindowMs: 100 });
      session.deliver(delivery(1));
      assert.equal(session.framesSent, 1, 'written before deliver returned');
      session.deliver(delivery(2));
      await turnEnd();
      session.deliver(delivery(3));
      await turnEnd();
      assert.equal(session.framesSent, 1, 'the window holds what follows');
      await client.waitFrames(2);
      assert.deepEqual(framed(client), [[1], [2, 3]]);
    });
  });
});
