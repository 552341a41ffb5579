import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser, signRaw, type TestUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { hex, incomingMessages } from '../helpers/protobuf.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * Clients' publishes (POST /bitrix/rest/, binary WebSocket frames) have a lane of
 * their own (publisher.clientMailboxCapacity, publisher.clientMaxInFlight) beside the
 * portal's (publisher.mailboxCapacity, publisher.maxInFlight). Both lanes are made as
 * small as they go: one write in flight, one waiting. Browsers flood the client lane
 * until it refuses them with 503, and the portal's publishes, one after another,
 * each find their own lane empty: every one answered 200 and delivered. With one
 * shared lane they would find it full and get 503 too.
 */

const FLOODERS = 48;
const PORTAL_PUBLISHES = 60;

let nats: TestNats;
let t: TestApp;

before(async () => {
  nats = await startTestNats();
  t = await startTestApp(nats.url, {
    publisher: { mailboxCapacity: 1, maxInFlight: 1, clientMailboxCapacity: 1, clientMaxInFlight: 1 },
    // The per-id request rate is not what this is about.
    limits: { clientRequestsPerSec: 1_000_000, clientRequestBurst: 1_000_000 },
  });
});

after(async () => {
  await t?.stop();
  await nats?.stop();
});

const to = (u: TestUser) => ({ id: hex(u.pub), isPrivate: false, signature: signRaw(`public:${u.pub}`) });
const clientBody = JSON.stringify({ module_id: 'application', command: 'flood', params: {} });

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${t.app.adminAddress!.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the client lane', () => {
  it("a flood of client publishes is refused in its own lane while the portal's publishes are all stored and delivered", async () => {
    const alice = newUser();
    const bob = newUser();
    const portalReader = await openWs(`${t.wsBase}/bitrix/subws/?CHANNEL_ID=${bob.token}`);
    await portalReader.opened;

    const clientStatuses = new Map<number, number>();
    let flooding = true;
    const request = incomingMessages([{ receivers: [to(bob)], body: clientBody, expiry: 60 }]);
    const flooder = async (): Promise<void> => {
      while (flooding) {
        const res = await fetch(`${t.base}/bitrix/rest/?CHANNEL_ID=${alice.token}`, { method: 'POST', body: request });
        await res.arrayBuffer();
        clientStatuses.set(res.status, (clientStatuses.get(res.status) ?? 0) + 1);
      }
    };
    const flood = Promise.all(Array.from({ length: FLOODERS }, flooder));

    // Wait until the client lane is seen full, then publish as the portal while it stays so.
    const deadline = Date.now() + 10_000;
    while ((clientStatuses.get(503) ?? 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const portalStatuses: number[] = [];
    try {
      for (let i = 0; i < PORTAL_PUBLISHES; i++) {
        const res = await publishText(t.base, bob.priv, `{"module_id":"portal","command":"n${i}","params":{}}`);
        await res.arrayBuffer();
        portalStatuses.push(res.status);
      }
    } finally {
      flooding = false;
      await flood;
    }
    const refusedDuring = clientStatuses.get(503) ?? 0;

    assert.ok(refusedDuring > 0, `the client lane was full: ${JSON.stringify([...clientStatuses])}`);
    assert.deepEqual([...clientStatuses.keys()].sort(), [200, 503], 'clients get 200 or the temporary 503, nothing else');
    assert.deepEqual(portalStatuses, Array.from({ length: PORTAL_PUBLISHES }, () => 200), 'every portal publish was acknowledged');
    assert.ok((await metric('jetpull_admission_rejections_total', 'reason="client-mailbox"')) > 0, 'counted as client-mailbox refusals');
    assert.equal(await metric('jetpull_admission_rejections_total', 'reason="mailbox"'), 0, "the portal's lane refused nothing");

    const deliveredBy = Date.now() + 10_000;
    const delivered = (): number => new Set(portalReader.text().match(/"command":"n\d+"/g) ?? []).size;
    while (delivered() < PORTAL_PUBLISHES && Date.now() < deliveredBy) await portalReader.waitFrames(portalReader.frames.length + 1, 500).catch(() => undefined);
    assert.equal(delivered(), PORTAL_PUBLISHES, 'every portal publish was delivered');
    portalReader.close();
  });
});
