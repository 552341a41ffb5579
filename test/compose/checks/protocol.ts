import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { SuiteContext } from '../context.ts';
import { body, publish } from '../publisher.ts';
import { LongPollSubscriber, WsSubscriber } from '../subscribers.ts';
import { record } from '../timings.ts';

/** The wire protocol through nginx, as a portal and browsers use it. Also runs against a deployment. */
export function protocolChecks(ctx: SuiteContext): void {
  const { publicUrl, publishUrl, key } = ctx.settings;

  it('a publish to :8895 answers 200 and reaches a WebSocket and a long-poll client on :8080', async () => {
    const ws = new WsSubscriber(publicUrl, key);
    const lp = new LongPollSubscriber(publicUrl, key);
    try {
      await ws.start();
      await lp.start();
      // A first publish may reach the long poll before the gateway holds it: publish
      // until both have one, then one more that both must get live.
      const deadline = Date.now() + 20_000;
      let first;
      do {
        first = await publish(publishUrl, [ws.user.priv, lp.user.priv]);
        assert.equal(first.status, 200, `publish answered ${first.status} ${first.error ?? ''}`);
        await new Promise((r) => setTimeout(r, 300));
      } while ((ws.mid === undefined || lp.mid === undefined) && Date.now() < deadline);
      assert.ok(ws.mid && lp.mid, 'both clients received a first message');
      const p = await publish(publishUrl, [ws.user.priv, lp.user.priv]);
      assert.equal(p.status, 200);
      await ws.waitFor(p.n, 5_000);
      await lp.waitFor(p.n, 5_000);
      record('publish → WebSocket client', ws.firstSeen.get(p.n)! - p.sentAt);
      record('publish → long-poll client', lp.firstSeen.get(p.n)! - p.sentAt);
      assert.match(ws.mid, /^\d{26}$/, 'mid: 26 digits');
    } finally {
      ws.stop();
      lp.stop();
    }
  });

  it('delivers the published body verbatim in the text frame', async () => {
    const ws = new WsSubscriber(publicUrl, key);
    try {
      await ws.start();
      let p;
      const deadline = Date.now() + 10_000;
      do {
        p = await publish(publishUrl, [ws.user.priv]);
        await ws.waitFor(p.n, 1_000).catch(() => undefined);
      } while (!ws.firstSeen.has(p.n) && Date.now() < deadline);
      const frame = ws.frames.find((f) => (f.text as { params: { n: number } }).params.n === p.n);
      assert.ok(frame, 'the message arrived');
      assert.deepEqual(frame.text, JSON.parse(body(p.n)));
      assert.equal(frame.channel, '-');
    } finally {
      ws.stop();
    }
  });

  it('refuses a client signed with another key (WebSocket and long poll: 400)', async () => {
    const ws = new WsSubscriber(publicUrl, `${key}-wrong`);
    await assert.rejects(ws.start(), /HTTP 400/);
    ws.stop();
    const lp = new LongPollSubscriber(publicUrl, `${key}-wrong`);
    assert.equal(await lp.probe(), 400);
    // The same requests with the right key are accepted: the refusal is the signature's.
    const right = new WsSubscriber(publicUrl, key);
    await right.start();
    right.stop();
  });

  it('keeps the portal\'s routes off the public port', async () => {
    for (const path of ['/bitrix/pub/', '/server-stat/']) {
      const res = await fetch(`${publicUrl}${path}?CHANNEL_ID=${'0'.repeat(32)}`, { method: path === '/bitrix/pub/' ? 'POST' : 'GET', body: path === '/bitrix/pub/' ? '{}' : undefined });
      await res.arrayBuffer();
      assert.equal(res.status, 404, `${path} on the public port`);
    }
  });
}
