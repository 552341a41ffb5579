import assert from 'node:assert/strict';
import { it } from 'node:test';
import { metricValue, prime, sleep, type Probe, type SuiteContext } from '../context.ts';
import { describeMissing, waitDelivered } from '../delivery.ts';
import { resolverDrops, droppedDuringAttempt } from '../nginx-log.ts';
import { badProbes, probeLoop, probeOnce } from '../probes.ts';
import { PublishLoop } from '../publisher.ts';
import { SilentWsClient } from '../../helpers/silent-ws-client.ts';
import { LongPollSubscriber, WsSubscriber, type Subscriber } from '../subscribers.ts';
import { note, record } from '../timings.ts';

/** Beyond the drain window, time for the last closes, NATS and the process exit. */
const EXIT_MARGIN_MS = 5_000;
/** A request through nginx normally takes milliseconds; this allows for a loaded machine. */
const PROBE_BOUND_MS = 2_000;
/** proxy_connect_timeout in deploy/nginx/nginx.conf. */
const CONNECT_TIMEOUT_MS = 200;

async function drainWindowMs(ctx: SuiteContext, service: string): Promise<number> {
  const { services } = await ctx.compose.config();
  return Number(services[service]?.environment?.PUSH_GATEWAY__DRAIN_WINDOW_MS ?? 10_000);
}

function describeProbes(probes: ReturnType<typeof badProbes>, since: number): string {
  return probes
    .slice(0, 10)
    .map((p) => `${p.what} at +${((p.at - since) / 1000).toFixed(1)} s: ${p.status || 'no answer'} after ${p.ms} ms`)
    .join('; ');
}

/** `docker compose stop` of one gateway, as in a rolling restart. */
export function gatewayStopChecks(ctx: SuiteContext): void {
  const { publicUrl, publishUrl, key } = ctx.settings;
  let stopStartedAt = 0;

  it('stopping a gateway: its clients resume on the other one by mid, nothing is lost, it exits 0 within the drain window', async () => {
    const { compose } = ctx;
    const window = await drainWindowMs(ctx, 'gateway1');
    const ws = Array.from({ length: 6 }, () => new WsSubscriber(publicUrl, key));
    const subs: Subscriber[] = [...ws, ...Array.from({ length: 2 }, () => new LongPollSubscriber(publicUrl, key))];
    const loop = new PublishLoop(publishUrl, subs.map((s) => s.user.priv), 100);
    const probes = probeLoop(publicUrl, key, ctx.probes);
    try {
      for (const s of subs) await s.start();
      await prime(publishUrl, subs);
      const onGateway1 = await metricValue(compose, 'gateway1', 'jetpull_connections');
      assert.ok(onGateway1 > 0, 'some clients are on gateway1');
      loop.start();
      await sleep(2_000);
      stopStartedAt = Date.now();
      const stop = await compose.run(['stop', 'gateway1'], { timeoutMs: 60_000 });
      const state = await compose.state('gateway1');
      // Longer than nginx skips a failed server (fail_timeout 5 s) and re-resolves names (2 s).
      await sleep(12_000);
      await loop.stop();
      await probes.stop();
      // The clients' reconnects went through nginx too.
      for (const c of ws) for (const h of c.handshakes) if (h.at >= stopStartedAt) ctx.probes.push({ what: 'client reconnect /bitrix/subws/', ...h });
      const d = await waitDelivered(subs, loop.acked(), 30_000);

      record('gateway stop: docker compose stop gateway1', stop.ms);
      note('gateway stop: exit code', state.exitCode);
      note('gateway stop: clients on gateway1 / WebSocket reconnects', `${onGateway1} / ${ws.reduce((n, c) => n + c.opens - 1, 0)}`);
      record('gateway stop: longest publish 200 → client', d.maxLatenessMs);

      assert.equal(stop.code, 0, `docker compose stop: ${stop.stderr}`);
      assert.equal(state.exitCode, 0, 'gateway1 exit code');
      assert.ok(stop.ms <= window + EXIT_MARGIN_MS, `stop took ${stop.ms} ms (drain window ${window} ms + ${EXIT_MARGIN_MS} ms)`);
      assert.ok(ws.some((c) => c.closes.includes(1012)), 'a WebSocket client was closed with 1012 (service restart)');
      for (const c of ws) assert.ok(c.opens === 1 || c.closes.includes(1012), 'only the drained clients reconnected');
      assert.deepEqual(d.missing, [], `acknowledged publishes lost: ${describeMissing(d)}`);
    } finally {
      await loop.stop();
      await probes.stop();
      for (const s of subs) s.stop();
    }
  });

  it(`nginx answers within ${PROBE_BOUND_MS / 1000} s while a gateway drains, and right after one stopped`, async () => {
    const { compose } = ctx;
    // Back to two gateways; nginx must find the restarted one by name.
    await compose.ok(['start', 'gateway1']);
    await compose.waitHealthy('gateway1');
    // A gateway stopped with no client and no request during its drain: nothing has told
    // nginx yet that it is gone when the next requests come.
    const idle: Probe[] = [];
    const idleStop = await compose.run(['stop', 'gateway2'], { timeoutMs: 60_000 });
    const idleStoppedAt = Date.now();
    const probes = probeLoop(publicUrl, key, idle);
    await sleep(12_000);
    await probes.stop();
    await compose.ok(['start', 'gateway2']);
    await compose.waitHealthy('gateway2');
    const restarted = (await Promise.all(Array.from({ length: 4 }, () => probeOnce(publicUrl, key)))).flat();

    // The one failure nginx itself allows: the stopped gateway's name dropped while a
    // request was connecting to its old address. Everything else must be fast and answered.
    const drops = await resolverDrops(compose, /^gateway\d+$/);
    const judge = (probes: Probe[]): { bad: Probe[]; raced: number } => {
      const failing = badProbes(probes, PROBE_BOUND_MS);
      const raced = failing.filter((p) => droppedDuringAttempt(p, drops, CONNECT_TIMEOUT_MS));
      return { bad: failing.filter((p) => !raced.includes(p)), raced: raced.length };
    };
    const during = judge(ctx.probes);
    const afterIdle = judge(idle);
    const afterRestart = judge(restarted);

    record(`nginx while gateway1 drained and stopped: slowest of ${ctx.probes.length} requests`, Math.max(...ctx.probes.map((p) => p.ms)));
    record(`nginx after an idle stop of gateway2: slowest of ${idle.length} requests`, Math.max(...idle.map((p) => p.ms)));
    note('nginx: 502/504 as the stopped gateway\'s name was dropped mid-connect', during.raced + afterIdle.raced + afterRestart.raced);
    assert.equal(idleStop.code, 0);
    assert.deepEqual(during.bad.length, 0, `while gateway1 drained and stopped: ${describeProbes(during.bad, stopStartedAt)}`);
    assert.deepEqual(afterIdle.bad.length, 0, `after gateway2 stopped: ${describeProbes(afterIdle.bad, idleStoppedAt)}`);
    assert.deepEqual(afterRestart.bad.length, 0, `after both restarted: ${describeProbes(afterRestart.bad, Date.now())}`);
    assert.ok(during.raced + afterIdle.raced <= 4, 'at most the requests in flight when the name was dropped');
  });

  it('a gateway whose client never answers the close handshake still exits 0 within the drain window', async () => {
    const { compose } = ctx;
    const clients: SilentWsClient[] = [];
    let target: string | undefined;
    try {
      for (let i = 0; i < 4; i++) clients.push(await SilentWsClient.open(`${publicUrl}/bitrix/subws/?CHANNEL_ID=${new WsSubscriber(publicUrl, key).user.token}`));
      for (const g of ['gateway2', 'gateway1']) if ((await metricValue(compose, g, 'jetpull_connections')) > 0) target ??= g;
      assert.ok(target, 'a silent client is on one of the gateways');
      const window = await drainWindowMs(ctx, target);
      const stop = await compose.run(['stop', target], { timeoutMs: 60_000 });
      const state = await compose.state(target);
      record(`silent client: docker compose stop ${target}`, stop.ms);
      note('silent client: exit code / close frames the clients got', `${state.exitCode} / ${clients.map((c) => c.closeCodes.join('+') || '-').join(' ')}`);
      assert.equal(state.exitCode, 0, `${target} exit code`);
      assert.ok(stop.ms <= window + EXIT_MARGIN_MS, `stop took ${stop.ms} ms (drain window ${window} ms + ${EXIT_MARGIN_MS} ms)`);
    } finally {
      for (const c of clients) c.destroy();
      if (target) {
        await compose.ok(['start', target]);
        await compose.waitHealthy(target);
      }
    }
  });
}
