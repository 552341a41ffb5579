import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  createPublisher,
  InvalidPublishError,
  publish,
  PublishFailedError,
  PublishRefusedError,
  type Publisher,
  type PublishRequest,
} from '../../src/client/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser, type TestUser } from '../helpers/channels.ts';
import { HttpRelay } from '../helpers/http-relay.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { NatsReplyLoss } from '../helpers/nats-reply-loss.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * The publisher library (`jetpull/client`) against a real jetpull and nats-server:
 * both transports, a retry after a lost answer stored once, refusals not retried,
 * temporary failures retried until the budget runs out.
 */

let nats: TestNats;
let t: TestApp;
let relay: HttpRelay;
let replyLoss: NatsReplyLoss;
let nc: NatsConnection;
let viaHttp: Publisher;
let viaNats: Publisher;

/** Short backoff so the tests do not wait seconds between attempts. */
const fastRetry = { baseDelayMs: 20, maxDelayMs: 200 };

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, { publisher: { publishTimeoutMs: 1_000 } });
  relay = await HttpRelay.start(t.port);
  replyLoss = await NatsReplyLoss.start(nats.port);
  nc = await connect({ servers: nats.url });
  viaHttp = createPublisher({ http: { url: `${relay.base}/bitrix/pub/` }, retry: fastRetry });
  viaNats = createPublisher({ nats: { servers: replyLoss.url }, retry: fastRetry, attemptTimeoutMs: 3_000 });
});
after(async () => {
  await viaHttp?.close();
  await viaNats?.close();
  await nc?.close();
  await relay?.close();
  await replyLoss?.close();
  await t?.stop();
  await nats?.stop();
});

const message = (n: string) => ({ module_id: 'test', command: 'client', params: { n } });

/** A mid before anything the test publishes next to the user. */
async function markStart(user: TestUser): Promise<string> {
  const r = await viaNats.publish({ channels: [user.priv], message: message('start'), expirySec: 3600 });
  return r.mids![0]!;
}

/** Every message stored for the user after `mid`, by its `n`. */
async function storedAfter(user: TestUser, mid: string): Promise<string[]> {
  const res = await longPoll(`${t.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result;
  return parseTextFrames(res.body.toString()).map((f) => (f.text as { params: { n: string } }).params.n);
}

/** Records the requests on the NATS publish subject (a plain subscriber sees each one besides the queue group). */
async function watchRequests(): Promise<{ ids: string[]; sub: Subscription }> {
  const ids: string[] = [];
  const sub = nc.subscribe('push.publish', {
    callback: (_e, m) => {
      ids.push((m.json() as { id: string }).id);
    },
  });
  await nc.flush();
  return { ids, sub };
}

describe('publisher library over HTTP', () => {
  it('stores the message for every receiver, delivered as the PHP module would send it', async () => {
    const user = newUser();
    const start = await markStart(user);
    const receipt = await viaHttp.publish({ channels: [user.priv], message: message('a'), expirySec: 3600 });
    assert.equal(receipt.via, 'http');
    assert.equal(receipt.attempts, 1);
    assert.equal(receipt.mids, undefined);
    assert.deepEqual(await storedAfter(user, start), ['a']);
    const last = relay.seen.at(-1)!;
    assert.equal(last.headers['message-expiry'], '3600');
    assert.equal(last.headers['idempotency-key'], receipt.idempotencyKey);
  });

  it('retries a publish whose answer was lost with the same Idempotency-Key, and it is stored once', async () => {
    const user = newUser();
    const start = await markStart(user);
    const before = relay.seen.length;
    relay.loseAnswers(1);
    const receipt = await viaHttp.publish({ channels: [user.priv], message: message('once'), expirySec: 3600 });
    const tries = relay.seen.slice(before);
    assert.equal(tries.length, 2, 'the lost attempt and one retry');
    assert.deepEqual(tries.map((s) => [s.status, s.lost]), [[200, true], [200, false]], 'the server stored it the first time; the answer was lost');
    assert.equal(tries[0]!.headers['idempotency-key'], tries[1]!.headers['idempotency-key']);
    assert.equal(receipt.attempts, 2);
    assert.deepEqual(await storedAfter(user, start), ['once']);
  });

  it('throws a refusal at once, without retrying: an idempotency key reused for another message', async () => {
    const user = newUser();
    const key = randomUUID();
    await viaHttp.publish({ channels: [user.priv], message: message('first'), expirySec: 3600, idempotencyKey: key });
    const before = relay.seen.length;
    const err = await viaHttp.publish({ channels: [user.priv], message: message('other'), expirySec: 3600, idempotencyKey: key }).catch((e: unknown) => e);
    assert.ok(err instanceof PublishRefusedError, `got ${String(err)}`);
    assert.equal(err.code, 'PUSH_ERR_IDEMPOTENCY_CONFLICT');
    assert.equal(err.status, 409);
    assert.equal(err.temporary, false);
    assert.equal(err.attempts, 1);
    assert.equal(relay.seen.length - before, 1, 'one request reached the server');
  });

  it('refuses invalid requests before sending anything, saying what is wrong', async () => {
    const user = newUser();
    const before = relay.seen.length;
    const cases: Array<[PublishRequest, RegExp]> = [
      [{ channels: [user.priv.toUpperCase()], message: message('x') }, /32-lowercase-hex/],
      [{ channels: [], message: message('x') }, /at least one channel/],
      [{ channels: [user.priv], message: '' }, /body is empty/],
      [{ channels: [user.priv], message: { module_id: 'm' } as never }, /command/],
      [{ channels: [user.priv], message: message('x'), expirySec: -1 }, /expirySec/],
      [{ channels: [user.priv], message: message('x'), idempotencyKey: 'has space' }, /idempotency key/],
      [{ channels: [{ id: user.pub, isPrivate: false }], message: message('x') }, /over NATS/],
    ];
    for (const [request, pattern] of cases) {
      const err = await viaHttp.publish(request).catch((e: unknown) => e);
      assert.ok(err instanceof InvalidPublishError, `${JSON.stringify(request)}: got ${String(err)}`);
      assert.match(err.message, pattern);
      assert.equal(err.attempts, 0);
    }
    assert.equal(relay.seen.length, before, 'nothing was sent');
  });

  it('gives up on an unreachable server after the retry budget, with the key to publish again with', async () => {
    const port = await freePort();
    const retries: number[] = [];
    const err = await publish(
      { channels: [newUser().priv], message: message('x') },
      { http: { url: `http://127.0.0.1:${port}/bitrix/pub/` }, retry: { ...fastRetry, maxAttempts: 3 }, onRetry: (e) => retries.push(e.attempt) },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof PublishFailedError, `got ${String(err)}`);
    assert.equal(err.code, 'PUSH_ERR_CLIENT_UNREACHABLE');
    assert.equal(err.attempts, 3);
    assert.equal(err.temporary, true);
    assert.match(err.idempotencyKey, /^[0-9a-f-]{36}$/);
    assert.deepEqual(retries, [1, 2]);
  });
});

describe('publisher library over NATS', () => {
  it('stores the message and answers one mid per receiver', async () => {
    const user = newUser();
    const start = await markStart(user);
    const receipt = await viaNats.publish({ channels: [user.token], message: message('n'), expirySec: 3600 });
    assert.equal(receipt.via, 'nats');
    assert.equal(receipt.mids?.length, 2, 'priv:pub.sig addresses the private and the public id');
    for (const mid of receipt.mids!) assert.match(mid, /^\d{26}$/);
    assert.deepEqual(await storedAfter(user, start), ['n']);
    const direct = await viaNats.publish({ channels: [{ id: user.pub, isPrivate: false }], message: 'raw text' });
    assert.equal(direct.mids?.length, 1, 'a bare public id is a receiver over NATS');
  });

  it('retries a request whose reply was lost with the same id, and it is stored once', async () => {
    const user = newUser();
    const start = await markStart(user);
    const watch = await watchRequests();
    try {
      replyLoss.loseReplies(1);
      const receipt = await viaNats.publish({ channels: [user.priv], message: message('once'), expirySec: 3600 });
      assert.equal(replyLoss.lost, 1, 'a reply was lost');
      assert.equal(receipt.attempts, 2);
      await eventually('both requests seen', () => watch.ids.length >= 2);
      assert.deepEqual(watch.ids, [receipt.idempotencyKey, receipt.idempotencyKey]);
      assert.deepEqual(await storedAfter(user, start), ['once']);
    } finally {
      watch.sub.unsubscribe();
    }
  });

  it('throws a refusal at once, without retrying: an id reused for another message', async () => {
    const user = newUser();
    const key = randomUUID();
    await viaNats.publish({ channels: [user.priv], message: message('first'), idempotencyKey: key });
    const watch = await watchRequests();
    try {
      const err = await viaNats.publish({ channels: [user.priv], message: message('other'), idempotencyKey: key }).catch((e: unknown) => e);
      assert.ok(err instanceof PublishRefusedError, `got ${String(err)}`);
      assert.equal(err.code, 'PUSH_ERR_IDEMPOTENCY_CONFLICT');
      assert.equal(err.attempts, 1);
      await nc.flush();
      assert.deepEqual(watch.ids, [key], 'one request was sent');
    } finally {
      watch.sub.unsubscribe();
    }
  });

  it('retries while no publisher serves the subject, then gives up with a temporary error', async () => {
    const err = await publish(
      { channels: [newUser().priv], message: message('x') },
      { nats: { servers: nats.url, subject: 'push.nobody' }, retry: { ...fastRetry, maxAttempts: 3 } },
    ).catch((e: unknown) => e);
    assert.ok(err instanceof PublishFailedError, `got ${String(err)}`);
    assert.equal(err.code, 'PUSH_ERR_CLIENT_NO_RESPONDERS');
    assert.equal(err.attempts, 3);
  });
});

describe('publisher library while storage is away', () => {
  it('retries the 503s of a server without NATS and stores the message once NATS is back', async () => {
    const user = newUser();
    const start = await markStart(user);
    const before = relay.seen.length;
    await nats.kill();
    const pending = createPublisher({ http: { url: `${relay.base}/bitrix/pub/` }, retry: { ...fastRetry, maxAttempts: 100 } })
      .publish({ channels: [user.priv], message: message('later'), expirySec: 3600 });
    try {
      await eventually('a 503 while NATS is down', () => relay.seen.slice(before).some((s) => s.status === 503), 15_000);
    } finally {
      await nats.start();
    }
    const receipt = await pending;
    const tries = relay.seen.slice(before);
    assert.ok(receipt.attempts >= 2);
    assert.equal(tries.at(-1)!.status, 200);
    assert.ok(tries.slice(0, -1).every((s) => s.status === 503), JSON.stringify(tries.map((s) => s.status)));
    assert.deepEqual(new Set(tries.map((s) => s.headers['idempotency-key'])), new Set([receipt.idempotencyKey]), 'every attempt carries the same key');
    await eventually('the stored message', async () => (await storedAfter(user, start)).length === 1, 15_000);
    assert.deepEqual(await storedAfter(user, start), ['later']);
  });
});

describe('publisher library against signed publishing', () => {
  it('signs each request with the key when given one; without it the server refuses with 4026, not retried', async () => {
    const signed = await startTestApp(nats.url, { security: { key: 'testkey', signedPublishing: 'required' } });
    try {
      const user = newUser();
      const start = await markStart(user);
      const url = `${signed.base}/bitrix/pub/`;
      const withKey = createPublisher({ http: { url, signature: { key: 'testkey' } }, retry: fastRetry });
      const withoutKey = createPublisher({ http: { url }, retry: fastRetry });
      const otherKey = createPublisher({ http: { url, signature: { key: 'another key' } }, retry: fastRetry });
      try {
        const receipt = await withKey.publish({ channels: [user.priv], message: message('signed ü'), expirySec: 3600 });
        assert.equal(receipt.attempts, 1);
        for (const p of [withoutKey, otherKey]) {
          const err = await p.publish({ channels: [user.priv], message: message('unsigned'), expirySec: 3600 }).catch((e: unknown) => e);
          assert.ok(err instanceof PublishRefusedError, String(err));
          assert.equal(err.attempts, 1, 'a refusal is not retried');
          assert.match(err.message, /4026: Wrong request signature\./);
        }
        assert.deepEqual(await storedAfter(user, start), ['signed ü']);
      } finally {
        await Promise.all([withKey.close(), withoutKey.close(), otherKey.close()]);
      }
    } finally {
      await signed.stop();
    }
  });
});
