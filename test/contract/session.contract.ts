import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/errors/close-codes.ts';
import type { Session } from '../../src/gateway/session.ts';
import { delivery, SessionHarness, type ClientEnd, type SessionPair } from '../helpers/session-harness.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * What every Session must do, whatever its transport: WebSocket and long poll run
 * the same cases on real sockets. Where the transports differ on the wire, the
 * expectation says how each one tells the client (`resumeOf`).
 */

const MID = '17953159400000000000000007';

interface Transport {
  readonly name: string;
  open(h: SessionHarness, opts?: Parameters<SessionHarness['ws']>[0]): Promise<SessionPair<Session>>;
  /** What the client sees when the session asks it to come back and resume with its mid. */
  isResume(end: ClientEnd): boolean;
  /** What the client sees when the session is closed with a protocol code. */
  isRefusal(end: ClientEnd, code: number, text: string): boolean;
}

const transports: Transport[] = [
  {
    name: 'WebSocket',
    open: (h, opts) => h.ws(opts),
    isResume: (end) => end.kind === 'closed' && end.code !== CloseCode.WrongChannelId && end.code >= 1012,
    isRefusal: (end, code, text) => end.kind === 'closed' && end.code === code && end.reason === text,
  },
  {
    name: 'long poll',
    open: (h, opts) => h.longPoll({ requestMid: MID, ...opts }),
    isResume: (end) => end.kind === 'answered' && end.status === 304 && end.lastMessageId === MID,
    isRefusal: (end, code, text) => end.kind === 'answered' && end.status === (code === 4029 ? 429 : 400) && end.body === text,
  },
];

for (const t of transports) {
  describe(`Session contract: ${t.name}`, () => {
    let h: SessionHarness;
    before(async () => {
      h = await SessionHarness.start();
    });
    after(() => h.close());

    it('holds live messages while syncing, then sends replay and buffer merged in order, once each', async () => {
      const { session, client } = await t.open(h);
      assert.equal(session.isSyncing, true);
      session.deliver(delivery(4));
      session.deliver(delivery(2));
      session.deliver(delivery(3));
      assert.deepEqual(client.seqs(), [], 'nothing before the replay is handed over');
      session.finishSync([delivery(1), delivery(3)]);
      assert.deepEqual(await client.waitSeqs(4), [1, 2, 3, 4]);
    });

    it('drops the buffered messages when the replay stopped at a page boundary (the client resumes past them)', async () => {
      const { session, client } = await t.open(h);
      session.deliver(delivery(9));
      session.finishSync([delivery(4), delivery(5)], false);
      assert.deepEqual(await client.waitSeqs(2), [4, 5]);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(client.seqs(), [4, 5]);
    });

    it('goes live after an empty replay and delivers each copy of a multi-receiver publish once', async () => {
      const keys = ['priv.00000000000000000000000000000001', 'priv.00000000000000000000000000000002'];
      const { session, client } = await t.open(h, { keys });
      session.finishSync([]);
      assert.equal(session.isSyncing, false);
      session.deliver(delivery(10, { pubId: 'p1', key: keys[0]! }));
      session.deliver(delivery(11, { pubId: 'p1', key: keys[1]!, firstSeq: 10 }));
      assert.deepEqual(await client.waitSeqs(1), [10]);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(client.seqs(), [10], 'the sibling copy is not delivered');
    });

    it('never sends a message at or below the mid the client resumed from', async () => {
      const { session, client } = await t.open(h, { resumeFrom: 10 });
      session.deliver(delivery(8));
      session.finishSync([]);
      session.deliver(delivery(9));
      session.deliver(delivery(11));
      assert.deepEqual(await client.waitSeqs(1), [11]);
    });

    it('does not send again a live copy of a message the replay already sent', async () => {
      const { session, client } = await t.open(h, { resumeFrom: 4 });
      session.finishSync([delivery(5), delivery(6)], true, 6);
      session.deliver(delivery(6));
      session.deliver(delivery(7));
      const got = await client.waitSeqs(t.name === 'long poll' ? 2 : 3);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(client.seqs(), t.name === 'long poll' ? [5, 6] : [5, 6, 7], `got ${got.join(', ')}`);
    });

    it('handed over before live delivery caught up: drops a live copy of what each channel\'s read covered, sends the rest', async () => {
      const keys = ['priv.00000000000000000000000000000001', 'pub.00000000000000000000000000000002'];
      const { session, client } = await t.open(h, { keys, resumeFrom: 4 });
      // The first channel was read up to 8, the second up to 6 (read first; 7 was stored on it after).
      session.finishSync([delivery(5, { key: keys[1]! }), delivery(8, { key: keys[0]! })], true, 0, [
        [keys[0]!, 8],
        [keys[1]!, 6],
      ]);
      session.deliver(delivery(5, { key: keys[1]! }));
      session.deliver(delivery(7, { key: keys[1]! }));
      session.deliver(delivery(8, { key: keys[0]! }));
      session.deliver(delivery(9, { key: keys[0]! }));
      // A long poll is answered with the replay and ends.
      const expected = t.name === 'long poll' ? [5, 8] : [5, 8, 7, 9];
      await client.waitSeqs(expected.length);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(client.seqs(), expected);
    });

    it('drops the later copy of a publish whose first copy it had, at its resume point or far back', async () => {
      const keys = ['priv.00000000000000000000000000000001', 'priv.00000000000000000000000000000002'];
      const { session, client } = await t.open(h, { keys, resumeFrom: 10 });
      session.finishSync([]);
      // The first copy (seq 10, on the first channel) came before the client's mid.
      session.deliver(delivery(12, { pubId: 'old', key: keys[1]!, firstSeq: 10, firstKey: keys[0]! }));
      if (t.name === 'long poll') {
        session.deliver(delivery(13));
        assert.deepEqual(await client.waitSeqs(1), [13]);
        return;
      }
      session.deliver(delivery(100, { pubId: 'p', key: keys[0]! }));
      for (let i = 0; i < 20; i++) session.deliver(delivery(101 + i, { pubId: `other-${i}`, key: keys[0]! }));
      session.deliver(delivery(200, { pubId: 'p', key: keys[1]!, firstSeq: 100, firstKey: keys[0]! }));
      session.deliver(delivery(201));
      const got = await client.waitSeqs(22);
      assert.deepEqual(got, [100, ...Array.from({ length: 20 }, (_, i) => 101 + i), 201]);
    });

    it('a replay that outgrows the outbox asks the client to resume instead of holding the memory', async () => {
      const { session, client } = await t.open(h, { maxOutboxBytes: 64 });
      const closedOnce: Session[] = [];
      session.onClosed = (s) => closedOnce.push(s);
      for (let seq = 1; seq <= 20; seq++) session.deliver(delivery(seq));
      const end = await within('the session to end', client.ended, 5_000);
      assert.ok(t.isResume(end), `resume expected, got ${JSON.stringify(end)}`);
      assert.equal(session.isClosed, true);
      assert.deepEqual(closedOnce, [session]);
    });

    it('closing with a protocol code tells the client with the code and its text; close is idempotent and onClosed fires once', async () => {
      const { session, client } = await t.open(h);
      session.finishSync([]);
      let closedCalls = 0;
      session.onClosed = () => closedCalls++;
      session.close(CloseCode.TooManyConnections);
      session.close(CloseCode.TooManyConnections);
      session.close(CloseCode.ServiceRestart);
      const end = await within('the session to end', client.ended, 5_000);
      assert.ok(t.isRefusal(end, 4029, '4029: Too many connections'), JSON.stringify(end));
      await eventually('the session to notice the close', () => session.isClosed);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(closedCalls, 1);
      session.deliver(delivery(1));
    });

    it('a drain close (1012) asks the client to resume elsewhere with its mid', async () => {
      const { session, client } = await t.open(h);
      session.finishSync([]);
      session.close(CloseCode.ServiceRestart);
      const end = await within('the session to end', client.ended, 5_000);
      assert.ok(t.isResume(end), JSON.stringify(end));
    });
  });
}
