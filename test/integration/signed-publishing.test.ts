import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { newUser, sign, TEST_KEY } from '../helpers/channels.ts';
import { channelStatsRequest, decodeResponseBatch, hex, incomingMessages } from '../helpers/protobuf.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { openWs } from '../helpers/ws-client.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * security.signedPublishing: with `required` every request to the pub route carries
 * signature = hex HMAC of its raw body (of CHANNEL_ID for GET stats) with the portal's
 * key, as Push server 2.0's cloud mode; anything else is 400 4026 and publishes nothing.
 * With `off` (the default) the route works as in personal mode and `signature` is ignored.
 */

const REFUSED = '4026: Wrong request signature.';
const hmacOf = (data: Buffer | string, key = TEST_KEY): string => sign(data as string, key);

let nats: TestNats;
let required: TestApp;
let off: TestApp;

before(async () => {
  nats = await startTestNats();
  [required, off] = await Promise.all([
    startTestApp(nats.url, { security: { key: TEST_KEY, signedPublishing: 'required' } }),
    startTestApp(nats.url, {}),
  ]);
});
after(async () => {
  await Promise.all([required?.stop(), off?.stop()]);
  await nats?.stop();
});

const body = (n: number): string => `{"module_id":"t","command":"signed","params":{"n":${n}}}`;

function pub(app: TestApp, query: string, data: Buffer | string): Promise<Response> {
  return fetch(`${app.base}/bitrix/pub/?${query}`, { method: 'POST', body: data, headers: { 'Message-Expiry': '600' } });
}

/** Messages a subscriber of `token` got: the `n` of each, in order. */
async function received(app: TestApp, token: string, count: number): Promise<number[]> {
  const ws = await openWs(`${app.wsBase}/bitrix/subws/?CHANNEL_ID=${token}&mid=10000000000000000000000000`);
  try {
    await ws.waitFrames(1);
    return eventually(`${count} messages`, () => {
      const ns = parseTextFrames(ws.text()).map((f) => (f.text as { params: { n: number } }).params.n);
      return ns.length >= count && ns;
    });
  } finally {
    ws.close();
  }
}

describe('signed publishing: required', () => {
  it('text publish: unsigned, forged, upper-case, other-key and wrong-body signatures are 400 4026; a signed one is stored and delivered', async () => {
    const user = newUser();
    const q = `CHANNEL_ID=${user.priv}`;
    const refusals: Array<[string, string]> = [
      ['unsigned', q],
      ['empty', `${q}&signature=`],
      ['forged', `${q}&signature=${'0'.repeat(40)}`],
      ['not hex', `${q}&signature=${'z'.repeat(40)}`],
      ['upper case', `${q}&signature=${hmacOf(body(1)).toUpperCase()}`],
      ['other key', `${q}&signature=${hmacOf(body(1), 'another key')}`],
      ['of another body', `${q}&signature=${hmacOf(body(2))}`],
      ['repeated', `${q}&signature=${hmacOf(body(1))}&signature=${hmacOf(body(1))}`],
    ];
    for (const [what, query] of refusals) {
      const res = await pub(required, query, body(1));
      assert.equal(res.status, 400, what);
      assert.equal(await res.text(), REFUSED, what);
    }
    const ok = await pub(required, `${q}&signature=${hmacOf(body(3))}`, body(3));
    assert.equal(ok.status, 200);
    assert.deepEqual(await received(required, user.token, 1), [3], 'only the signed message was stored');
  });

  it('the signature is of the raw bytes: a body with non-ASCII text verifies only against those bytes', async () => {
    const user = newUser();
    const text = '{"module_id":"t","command":"signed","params":{"n":7,"s":"привет"}}';
    const bytes = Buffer.from(text, 'utf8');
    const latin1 = hmacOf(Buffer.from(text, 'latin1'));
    assert.equal((await pub(required, `CHANNEL_ID=${user.priv}&signature=${latin1}`, bytes)).status, 400);
    assert.equal((await pub(required, `CHANNEL_ID=${user.priv}&signature=${hmacOf(bytes)}`, bytes)).status, 200);
    assert.deepEqual(await received(required, user.token, 1), [7]);
  });

  it('binaryMode publish and channel stats: the signature is of the RequestBatch bytes', async () => {
    const user = newUser();
    const batch = incomingMessages([{ receivers: [{ id: hex(user.priv), isPrivate: true }], body: body(5), expiry: 600 }]);
    const unsigned = await pub(required, 'binaryMode=true', batch);
    assert.equal(unsigned.status, 400);
    assert.equal(await unsigned.text(), REFUSED);
    const signed = await pub(required, `binaryMode=true&signature=${hmacOf(batch)}`, batch);
    assert.equal(signed.status, 200);
    assert.deepEqual(await received(required, user.token, 1), [5]);

    const stats = channelStatsRequest([{ id: hex(user.priv), isPrivate: true }]);
    assert.equal((await pub(required, `binaryMode=true&signature=${hmacOf(batch)}`, stats)).status, 400, 'a signature of another batch');
    const answer = await pub(required, `binaryMode=true&signature=${hmacOf(stats)}`, stats);
    assert.equal(answer.status, 200);
    assert.equal(decodeResponseBatch(new Uint8Array(await answer.arrayBuffer()))[0]?.channelStats?.length, 1);
  });

  it('GET channel stats: the signature is of the CHANNEL_ID value', async () => {
    const user = newUser();
    const ws = await openWs(`${required.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
    try {
      const channels = `${user.priv}/${newUser().priv}`;
      const get = (query: string): Promise<Response> => fetch(`${required.base}/bitrix/pub/?${query}`);
      for (const query of [`CHANNEL_ID=${channels}`, `CHANNEL_ID=${channels}&signature=${hmacOf(user.priv)}`, `CHANNEL_ID=${channels}&signature=${hmacOf('')}`]) {
        const res = await get(query);
        assert.equal(res.status, 400, query);
        assert.equal(await res.text(), REFUSED, query);
      }
      // Percent-encoded as the pull module's Uri::addParams sends it: the decoded value is signed.
      const signed = await eventually('the channel online', async () => {
        const res = await get(`CHANNEL_ID=${encodeURIComponent(channels)}&signature=${hmacOf(channels)}`);
        const json = (await res.json()) as { infos: Array<{ channel: string }> };
        return res.status === 200 && json.infos.length === 1 && json.infos;
      });
      assert.deepEqual(signed, [{ channel: user.priv, subscribers: 1 }]);
      const none = await get(`signature=${hmacOf('')}`);
      assert.equal(await none.text(), '4017: No channels found.', 'no CHANNEL_ID: the empty string is signed, then the request is checked as before');
    } finally {
      ws.close();
    }
  });

  it('/server-stat/ and the subscription routes are not signed', async () => {
    assert.equal((await fetch(`${required.base}/server-stat/`)).status, 200);
    const ws = await openWs(`${required.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}`);
    ws.close();
  });
});

describe('signed publishing: off', () => {
  it('unsigned requests are served as in personal mode, and a wrong signature is ignored', async () => {
    const user = newUser();
    assert.equal((await pub(off, `CHANNEL_ID=${user.priv}`, body(1))).status, 200);
    assert.equal((await pub(off, `CHANNEL_ID=${user.priv}&signature=${'0'.repeat(40)}`, body(2))).status, 200);
    assert.deepEqual(await received(off, user.token, 2), [1, 2]);
    assert.equal((await fetch(`${off.base}/bitrix/pub/?CHANNEL_ID=${user.priv}`)).status, 200);
  });
});
