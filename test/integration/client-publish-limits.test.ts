import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser, signRaw, type TestUser } from '../helpers/channels.ts';
import { publishText } from '../helpers/backend.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { decodeResponseBatch, hex, incomingMessages, type ReceiverIn } from '../helpers/protobuf.ts';
import { openWs, type TestWs } from '../helpers/ws-client.ts';
import { within } from '../helpers/wait.ts';

/**
 * What a client may publish (spec §5.3, untrusted): a body as the official client
 * builds it (JSON.stringify of {module_id, command, params}, official-client.md §5.5)
 * of at most limits.maxClientMessageBytes; at most limits.maxClientCopiesPerRequest
 * copies (receivers summed over the request's messages); an expiry cut to
 * limits.maxClientExpirySec. A refusal is the protocol's own: 400 "<code>: <reason>"
 * over /bitrix/rest/, a close with the code on a binary WebSocket. The backend's
 * /bitrix/pub/ is trusted and keeps taking any body.
 */

const MAX_BYTES = 1_024;
const MAX_COPIES = 5;
const MAX_EXPIRY = 60;

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, {
    limits: { maxClientMessageBytes: MAX_BYTES, maxClientCopiesPerRequest: MAX_COPIES, maxClientExpirySec: MAX_EXPIRY },
  });
});

after(async () => {
  await t?.stop();
  await nats?.stop();
});

const to = (u: TestUser): ReceiverIn => ({ id: hex(u.pub), isPrivate: false, signature: signRaw(`public:${u.pub}`) });
const clientBody = (params: unknown): string => JSON.stringify({ module_id: 'application', command: 'cli_cmd', params });

function rest(from: TestUser, req: Buffer): Promise<Response> {
  return fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${from.token}`, { method: 'POST', body: req });
}

async function binaryWs(u: TestUser): Promise<TestWs> {
  return openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}&binaryMode=true`);
}

/** Bodies of the messages `ws` got so far. */
function bodies(ws: TestWs): Array<{ body: string; expiry: number }> {
  return ws.frames.flatMap((f) => decodeResponseBatch(f.data).flatMap((r) => r.outgoingMessages ?? [])).map((m) => ({ body: m.body, expiry: m.expiry }));
}

/** Delivery is in order: once a later backend message is in, nothing published before it is still on its way. */
async function settle(ws: TestWs, u: TestUser): Promise<void> {
  const res = await publishText(t.base, u.priv, '{"module_id":"application","command":"done","params":{}}');
  assert.equal(res.status, 200);
  const deadline = Date.now() + 5_000;
  while (!bodies(ws).some((b) => b.body.includes('"done"'))) {
    if (Date.now() > deadline) throw new Error('the closing message did not arrive');
    await ws.waitFrames(ws.frames.length + 1, deadline - Date.now()).catch(() => undefined);
  }
}

describe('client-published bodies', () => {
  const refused: Array<[string, string]> = [
    ['not JSON', '{"module_id":"application","command":"c","params":{}}}#!NGINXNME!#'],
    ['JSON but an array', '[{"module_id":"application","command":"c"}]'],
    ['JSON but a string', '"hello"'],
    ['an object without module_id', '{"command":"c","params":{}}'],
    ['an object whose command is not a string', '{"module_id":"application","command":1,"params":{}}'],
    ['larger than maxClientMessageBytes', clientBody({ pad: 'x'.repeat(MAX_BYTES) })],
  ];
  for (const [what, body] of refused) {
    it(`${what}: POST /bitrix/rest/ answers 400 "4013: Wrong Request Data." and nothing is delivered`, async () => {
      const bob = newUser();
      const b = await binaryWs(bob);
      const res = await rest(newUser(), incomingMessages([{ receivers: [to(bob)], body, expiry: 0 }]));
      assert.equal(res.status, 400);
      assert.equal(await res.text(), '4013: Wrong Request Data.');
      await settle(b, bob);
      assert.deepEqual(bodies(b).map((m) => m.body).filter((x) => !x.includes('"done"')), []);
      b.close();
    });
  }

  it('a body of exactly maxClientMessageBytes is taken', async () => {
    const bob = newUser();
    const b = await binaryWs(bob);
    const base = clientBody({ pad: '' });
    const body = clientBody({ pad: 'y'.repeat(MAX_BYTES - Buffer.byteLength(base)) });
    assert.equal(Buffer.byteLength(body), MAX_BYTES);
    const res = await rest(newUser(), incomingMessages([{ receivers: [to(bob)], body, expiry: 0 }]));
    assert.equal(res.status, 200, await res.text());
    await settle(b, bob);
    assert.equal(bodies(b)[0]!.body, body);
    b.close();
  });

  it('one bad message refuses the whole request: the good one before it is not published either', async () => {
    const bob = newUser();
    const b = await binaryWs(bob);
    const res = await rest(newUser(), incomingMessages([
      { receivers: [to(bob)], body: clientBody({ n: 1 }), expiry: 0 },
      { receivers: [to(bob)], body: 'not json', expiry: 0 },
    ]));
    assert.equal(res.status, 400);
    await settle(b, bob);
    assert.deepEqual(bodies(b).filter((m) => !m.body.includes('"done"')), []);
    b.close();
  });

  it('the backend is trusted: /bitrix/pub/ still takes a body that is not JSON', async () => {
    const bob = newUser();
    const b = await binaryWs(bob);
    const res = await fetch(`${t.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: incomingMessages([{ receivers: [{ id: hex(bob.priv), isPrivate: true }], body: 'plain text', expiry: 0 }]) });
    assert.equal(res.status, 200, await res.text());
    await settle(b, bob);
    assert.equal(bodies(b)[0]!.body, 'plain text');
    b.close();
  });
});

describe('stored copies and expiry of client publishes', () => {
  it(`more than maxClientCopiesPerRequest receivers summed over the messages: 400 "4018: …", nothing is delivered`, async () => {
    const users = Array.from({ length: 3 }, () => newUser());
    const subs = await Promise.all(users.map(binaryWs));
    // 2 messages × 3 receivers = 6 copies > 5.
    const msg = { receivers: users.map(to), body: clientBody({}), expiry: 0 };
    const res = await rest(newUser(), incomingMessages([msg, msg]));
    assert.equal(res.status, 400);
    assert.equal(await res.text(), '4018: Request exceeded the maximum number of channels.');
    for (const [i, s] of subs.entries()) {
      await settle(s, users[i]!);
      assert.deepEqual(bodies(s).filter((m) => !m.body.includes('"done"')), []);
      s.close();
    }
  });

  it('maxClientCopiesPerRequest copies are taken', async () => {
    const users = Array.from({ length: MAX_COPIES }, () => newUser());
    const subs = await Promise.all(users.map(binaryWs));
    const res = await rest(newUser(), incomingMessages([
      { receivers: users.slice(0, 3).map(to), body: clientBody({ m: 1 }), expiry: 0 },
      { receivers: users.slice(3).map(to), body: clientBody({ m: 2 }), expiry: 0 },
    ]));
    assert.equal(res.status, 200, await res.text());
    for (const [i, s] of subs.entries()) {
      await settle(s, users[i]!);
      assert.equal(bodies(s).filter((m) => !m.body.includes('"done"')).length, 1);
      s.close();
    }
  });

  it('an expiry above maxClientExpirySec is cut to it', async () => {
    const bob = newUser();
    const b = await binaryWs(bob);
    const res = await rest(newUser(), incomingMessages([{ receivers: [to(bob)], body: clientBody({}), expiry: 86_400 }]));
    assert.equal(res.status, 200, await res.text());
    await settle(b, bob);
    assert.equal(bodies(b)[0]!.expiry, MAX_EXPIRY);
    b.close();
  });
});

describe('a refused client request over a binary WebSocket', () => {
  it('closes that socket with 4013; other clients and the server go on', async () => {
    const alice = newUser();
    const bob = newUser();
    const carol = newUser();
    const a = await binaryWs(alice);
    const b = await binaryWs(bob);
    const c = await binaryWs(carol);
    a.ws.send(incomingMessages([{ receivers: [to(bob)], body: 'x'.repeat(MAX_BYTES + 1), expiry: 0 }]));
    assert.deepEqual(await within('the close', a.closed, 5_000), { code: 4013, reason: '4013: Wrong Request Data.' });
    c.ws.send(incomingMessages([{ receivers: [to(bob)], body: clientBody({ from: 'carol' }), expiry: 0 }]));
    await settle(b, bob);
    assert.deepEqual(bodies(b).map((m) => m.body).filter((x) => !x.includes('"done"')), [clientBody({ from: 'carol' })]);
    assert.equal(b.ws.readyState, b.ws.OPEN);
    assert.equal(c.ws.readyState, c.ws.OPEN);
    b.close();
    c.close();
  });
});
