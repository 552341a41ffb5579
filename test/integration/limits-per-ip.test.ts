import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newShared, newUser } from '../helpers/channels.ts';
import { longPollFrom } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs, TestWs } from '../helpers/ws-client.ts';

/**
 * Limits per client address and per process, over real sockets: 127.0.0.2, 127.0.0.3 …
 * stand for clients on other addresses (Linux routes all of 127/8 to loopback). A
 * refused WebSocket gets an HTTP status instead of 101, a refused long poll the same
 * status with Retry-After; the connections already held keep getting their messages.
 */

const MSG = (n: number): string => `{"module_id":"t","command":"c","params":{"n":${n}}}`;

let nats: TestNats;
before(async () => {
  nats = await startTestNats();
});
after(() => nats?.stop());

/** A raw upgrade from `localAddress`: what a client sees, status line and headers, when it is refused. */
function upgradeFrom(t: TestApp, token: string, localAddress: string, headers = ''): Promise<string> {
  return rawRequest(
    t.port,
    `GET /bitrix/subws/?CHANNEL_ID=${token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    500,
    { localAddress },
  );
}

const ws = (t: TestApp, token: string, localAddress: string, headers?: Record<string, string>): Promise<TestWs> =>
  openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${token}`, { localAddress, headers });

const poll = (t: TestApp, token: string, localAddress: string, mid?: string): ReturnType<typeof longPollFrom> =>
  longPollFrom(`${t.base}/bitrix/sub/?CHANNEL_ID=${token}${mid === undefined ? '' : `&mid=${mid}`}`, { localAddress });

async function refusals(t: TestApp, reason: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.app.adminAddress!.port}/metrics`)).text();
  const m = new RegExp(`^jetpull_admission_rejections_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

describe('connections per address (gateway.maxConnectionsPerIp)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { maxConnectionsPerIp: 3, longPollTimeoutMs: 30_000 } });
  });
  after(() => t.stop());

  it('WebSockets and held long polls of one address count together; one more is refused with 429, other addresses connect, the held ones get their messages', async () => {
    const users = [newUser(), newUser(), newUser()];
    const held = [await ws(t, users[0]!.token, '127.0.0.2'), await ws(t, users[1]!.token, '127.0.0.2')];
    const heldPoll = poll(t, users[2]!.token, '127.0.0.2');
    await eventually('the poll held', () => t.app.gateway!.stats().pollings === 1);

    const refused = await upgradeFrom(t, newUser().token, '127.0.0.2');
    assert.match(refused, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(refused, /\r\nRetry-After: \d+\r\n/);
    const refusedPoll = await poll(t, newUser().token, '127.0.0.2').result;
    assert.equal(refusedPoll.status, 429);
    assert.ok(Number(refusedPoll.headers.get('retry-after')) > 0);

    const other = newUser();
    const elsewhere = await ws(t, other.token, '127.0.0.3');
    assert.match(await upgradeFrom(t, newUser().token, '127.0.0.4'), /^HTTP\/1\.1 101 /);

    for (const [i, u] of [...users, other].entries()) assert.equal((await publishText(t.base, u.priv, MSG(i), 60)).status, 200);
    assert.equal((parseTextFrames((await held[0]!.waitFrames(1))[0]!.data.toString())[0]!.text as { params: { n: number } }).params.n, 0);
    await held[1]!.waitFrames(1);
    await elsewhere.waitFrames(1);
    assert.equal((await heldPoll.result).status, 200);

    // The answered poll no longer counts: its place is free for the next connection.
    const third = await ws(t, newUser().token, '127.0.0.2');
    held[0]!.close();
    await eventually('the closed socket leaves its place', async () => (await upgradeFrom(t, newUser().token, '127.0.0.2')).startsWith('HTTP/1.1 101 '));
    assert.ok((await refusals(t, 'connections-per-ip')) >= 2);
    for (const c of [held[1]!, third, elsewhere]) c.close();
  });
});

describe('new connections per address per second (gateway.maxNewConnectionsPerIpPerSec)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, {
      gateway: { maxNewConnectionsPerIpPerSec: 1, newConnectionsPerIpBurst: 3, maxNewConnectionsPerSec: 6, longPollTimeoutMs: 30_000, repollGraceMs: 10_000 },
    });
  });
  after(() => t.stop());

  it("past its burst an address is refused with 429 without spending the process's rate; another address connects, the open ones get their messages", async () => {
    const users = [newUser(), newUser(), newUser()];
    const open = await Promise.all(users.map((u) => ws(t, u.token, '127.0.0.5')));
    const flood = (await Promise.all(Array.from({ length: 20 }, () => upgradeFrom(t, newUser().token, '127.0.0.5')))).map((r) => r.slice(9, 12));
    // Its burst is spent; a token a second comes back meanwhile.
    assert.ok(flood.filter((s) => s === '429').length >= 14, flood.join(','));
    assert.ok(flood.every((s) => s === '429' || s === '101'), `refused for the address, not for the process: ${flood.join(',')}`);
    // The process had 6 and the address spent 3 (plus at most a refilled one or two): 2 are left for others.
    const others = await Promise.all([newUser(), newUser()].map((u) => ws(t, u.token, '127.0.0.6')));
    for (const [i, u] of users.entries()) await publishText(t.base, u.priv, MSG(i), 60);
    for (const c of open) await c.waitFrames(1);
    for (const c of [...open, ...others]) c.close();
    assert.ok((await refusals(t, 'connection-rate-per-ip')) >= 14);
  });

  it('long polls coming back with the mid of their answer are not charged to their address', async () => {
    await new Promise((r) => setTimeout(r, 3_500)); // the address's burst saved up again
    const shared = newShared();
    const users = [newUser(), newUser(), newUser()];
    const url = (u: (typeof users)[number]): string => `${u.token}/${shared.token}`;
    const first = users.map((u) => poll(t, url(u), '127.0.0.7'));
    await eventually('every poll held', () => t.app.gateway!.stats().pollings === 3);
    await publishText(t.base, shared.id, MSG(1), 60);
    const answers = await Promise.all(first.map((p) => p.result));
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
    const before = await refusals(t, 'connection-rate-per-ip');

    // Every client polls again at once with its mid: three polls, and the address has at most a token or two.
    const again = users.map((u, i) => poll(t, url(u), '127.0.0.7', parseTextFrames(answers[i]!.body.toString()).at(-1)!.mid));
    await eventually('every re-poll held', () => t.app.gateway!.stats().pollings === 3);
    await publishText(t.base, shared.id, MSG(2), 60);
    assert.deepEqual((await Promise.all(again.map((p) => p.result))).map((a) => a.status), [200, 200, 200]);
    assert.equal(await refusals(t, 'connection-rate-per-ip'), before);
    // New polls from that address are still charged.
    const fresh = await Promise.all(Array.from({ length: 6 }, () => upgradeFrom(t, newUser().token, '127.0.0.7')));
    assert.ok(fresh.some((r) => r.startsWith('HTTP/1.1 429 ')), fresh.map((r) => r.slice(9, 12)).join(','));
  });
});

describe('connections per process (gateway.maxConnections)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, { gateway: { maxConnections: 3, longPollTimeoutMs: 30_000 } });
  });
  after(() => t.stop());

  it('past it every address is refused with 503 and Retry-After; the open connections get their messages; a freed place is taken', async () => {
    const users = [newUser(), newUser(), newUser()];
    const open = [await ws(t, users[0]!.token, '127.0.0.8'), await ws(t, users[1]!.token, '127.0.0.9')];
    const heldPoll = poll(t, users[2]!.token, '127.0.0.10');
    await eventually('the poll held', () => t.app.gateway!.stats().pollings === 1);

    const refused = await upgradeFrom(t, newUser().token, '127.0.0.11');
    assert.match(refused, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(refused, /\r\nRetry-After: \d+\r\n/);
    const refusedPoll = await poll(t, newUser().token, '127.0.0.12').result;
    assert.equal(refusedPoll.status, 503);
    assert.ok(Number(refusedPoll.headers.get('retry-after')) > 0);

    for (const [i, u] of users.entries()) await publishText(t.base, u.priv, MSG(i), 60);
    for (const c of open) await c.waitFrames(1);
    assert.equal((await heldPoll.result).status, 200);
    const next = await ws(t, newUser().token, '127.0.0.11');
    assert.ok((await refusals(t, 'connections')) >= 2);
    for (const c of [...open, next]) c.close();
  });
});

describe('client addresses behind a trusted proxy (security.trustedProxies)', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp(nats.url, {
      security: { key: 'testkey', trustedProxies: ['127.0.0.1'] },
      gateway: { maxConnectionsPerIp: 1 },
      limits: { restRequestsPerIpPerSec: 1 },
    });
  });
  after(() => t.stop());

  it("the proxy's X-Forwarded-For (from the right) or X-Real-IP names the client; anyone else's headers are not believed", async () => {
    const open: TestWs[] = [];
    const via = async (headers: Record<string, string>, from = '127.0.0.1'): Promise<TestWs> => {
      const c = await ws(t, newUser().token, from, headers);
      open.push(c);
      return c;
    };
    const refusedVia = (headers: string, from = '127.0.0.1'): Promise<string> => upgradeFrom(t, newUser().token, from, headers);

    await via({ 'X-Forwarded-For': '198.51.100.7' });
    await via({ 'X-Forwarded-For': '198.51.100.8' });
    assert.match(await refusedVia('X-Forwarded-For: 198.51.100.7\r\n'), /^HTTP\/1\.1 429 /);
    // What the client wrote itself comes first; the proxy appends the address it saw.
    assert.match(await refusedVia('X-Forwarded-For: 203.0.113.5, 198.51.100.7\r\n'), /^HTTP\/1\.1 429 /);
    await via({ 'X-Real-IP': '198.51.100.9' });
    assert.match(await refusedVia('X-Real-IP: 198.51.100.9\r\n'), /^HTTP\/1\.1 429 /);
    // IPv6 clients count by /64.
    await via({ 'X-Forwarded-For': '2001:db8:1:2::10' });
    assert.match(await refusedVia('X-Forwarded-For: 2001:db8:1:2::20\r\n'), /^HTTP\/1\.1 429 /);
    await via({ 'X-Forwarded-For': '2001:db8:1:3::10' });

    // 127.0.0.13 is not a trusted proxy: it is the client, whatever it writes.
    await via({ 'X-Forwarded-For': '198.51.100.10' }, '127.0.0.13');
    assert.match(await refusedVia('X-Forwarded-For: 198.51.100.11\r\n', '127.0.0.13'), /^HTTP\/1\.1 429 /);
    assert.match(await refusedVia('X-Real-IP: 198.51.100.12\r\n', '127.0.0.13'), /^HTTP\/1\.1 429 /);
    for (const c of open) c.close();
  });

  it('POST /bitrix/rest/ is counted per address the same way (limits.restRequestsPerIpPerSec)', async () => {
    const post = (headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(`${t.base}/bitrix/rest/?CHANNEL_ID=${newUser().token}`, { method: 'POST', headers, localAddress, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('x');
      });
    assert.notEqual(await post({ 'X-Forwarded-For': '198.51.100.20' }), 429);
    assert.equal(await post({ 'X-Forwarded-For': '198.51.100.20' }), 429);
    assert.notEqual(await post({ 'X-Forwarded-For': '198.51.100.21' }), 429);
    assert.notEqual(await post({ 'X-Forwarded-For': '198.51.100.20' }, '127.0.0.14'), 429);
    assert.equal(await post({ 'X-Forwarded-For': '198.51.100.22' }, '127.0.0.14'), 429);
  });

  it('an entry that is not an address, a range or a named range stops start-up', async () => {
    await assert.rejects(startTestApp(nats.url, { security: { key: 'testkey', trustedProxies: ['nginx'] } }), /trustedProxies/);
  });
});
