import type { JetpullProcess } from './jetpull-process.ts';
import type { Rig } from './rig.ts';
import { streamBlockCount } from './stream-admin.ts';
import { sleep, waitFor } from './time.ts';

/**
 * The faults, each one phase on the rig's timeline: it marks when the fault was
 * injected and cleared, then lets the system settle. Durations are parameters so
 * the CI run and the long run share them.
 */

export interface Timing {
  /** How long the fault lasts (down, paused, asleep). */
  faultMs: number;
  /** Time after the fault is cleared before the next phase. */
  settleMs: number;
}

export async function baseline(rig: Rig, ms: number): Promise<void> {
  rig.timeline.begin('baseline');
  await sleep(ms);
  rig.timeline.end();
}

/** kill -9 of the PUSH_MESSAGES leader's node, restarted on the same ports and store. */
export async function leaderKill(rig: Rig, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('leader-kill');
  const node = await rig.leaderNode();
  await node.kill();
  tl.fault(`kill -9 ${node.name} (stream leader)`);
  const next = await rig.admin.leader().catch(() => 'none');
  tl.note(`new stream leader ${next}`);
  await sleep(Math.max(0, t.faultMs - (Date.now() - tl.phases.at(-1)!.faultAt!)));
  await node.start();
  tl.cleared(`${node.name} restarted`);
  await sleep(t.settleMs);
  tl.end();
}

/** kill -9 of a gateway: its clients move to the other one; then it is restarted. */
export async function gatewayKill(rig: Rig, which: JetpullProcess, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin(`gateway-kill`);
  await which.kill9();
  tl.fault(`kill -9 ${which.name}`);
  await sleep(t.faultMs);
  await which.start();
  tl.cleared(`${which.name} restarted (ready)`);
  await sleep(t.settleMs);
  tl.end();
}

/** SIGSTOP of the NATS node a gateway is connected to, SIGCONT after a few seconds. */
export async function nodePause(rig: Rig, of: JetpullProcess, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('node-pause');
  const node = await rig.nodeOf(of);
  const leader = await rig.admin.leader().catch(() => '?');
  node.pause();
  tl.fault(`SIGSTOP ${node.name} (${of.name}'s node; stream leader ${leader})`);
  await sleep(t.faultMs);
  node.resume();
  tl.cleared(`SIGCONT ${node.name}`);
  await sleep(t.settleMs);
  tl.end();
}

/** kill -9 of the publisher; the load retries meanwhile; then it is restarted. */
export async function publisherKill(rig: Rig, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('publisher-kill');
  await rig.publisher.kill9();
  tl.fault('kill -9 publisher');
  await sleep(t.faultMs);
  await rig.publisher.start();
  tl.cleared('publisher restarted (ready)');
  await sleep(t.settleMs);
  tl.end();
}

/** A share of the ordinary clients disconnect for a while and come back with their mid. */
export async function clientSleep(rig: Rig, share: number, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('client-sleep');
  const sleepers = rig.rng.shuffle(rig.ordinary).slice(0, Math.max(1, Math.round(rig.ordinary.length * share)));
  tl.fault(`${sleepers.length} clients sleep ${t.faultMs} ms: ${sleepers.map((s) => s.rec.id).join(', ')}`);
  await Promise.all(sleepers.map(async (s) => {
    await sleep(rig.rng.between(0, 1_000));
    await s.sleep(t.faultMs);
  }));
  tl.cleared('all sleepers back');
  await sleep(t.settleMs);
  tl.end();
}

/**
 * A client pinned to gateway 2 (small outbox) sleeps while more than that outbox's
 * worth of messages is published to its channel, then comes back with its mid.
 */
export async function outboxReplay(rig: Rig, burst: { messages: number; bodyBytes: number; outboxBytes: number }, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('outbox-replay');
  const { outboxSleeper, outboxSleeperChannel } = rig.special;
  let wake!: () => void;
  const woken = new Promise<void>((r) => (wake = r));
  const slept = outboxSleeper.sleepUntil(woken);
  tl.fault(`${outboxSleeper.rec.id} sleeps; ${burst.messages} × ${burst.bodyBytes} B to its channel (outbox limit ${burst.outboxBytes} B)`);
  const recs = await rig.load.burst(burst.messages, [outboxSleeperChannel], burst.bodyBytes, 'outbox-burst', 8);
  const acked = recs.filter((r) => r.ackAt !== undefined);
  tl.note(`${acked.length}/${recs.length} burst messages acknowledged, ${acked.reduce((s, r) => s + r.bytes, 0)} B`);
  await sleep(Math.max(0, t.faultMs - (Date.now() - tl.phases.at(-1)!.faultAt!)));
  wake();
  await slept;
  tl.cleared(`${outboxSleeper.rec.id} reconnects with its mid`);
  await sleep(t.settleMs);
  const closes = outboxSleeper.rec.conns.filter((c) => c.startedAt >= tl.phases.at(-1)!.faultAt! && c.end === 'close 4008').length;
  tl.note(`${outboxSleeper.rec.id}: ${closes} connections closed with 4008 since the burst`);
  tl.end();
}

/**
 * The load is raised and the NATS node of gateway 1 is killed and restarted, while
 * filler is being stored on a channel nobody listens to: gateway 1's catch-up after
 * its reconnect has megabytes to scan, and more live messages arrive meanwhile than
 * PUSH_GATEWAY__MAX_CATCH_UP_HELD_MESSAGES lets it hold.
 */
export async function catchUpOverflow(rig: Rig, o: { rate: number; fillerBytes: number; heldLimit: number }, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('catch-up-overflow');
  rig.load.setRate(o.rate);
  tl.note(`load raised to ${o.rate}/s`);
  await sleep(1_000);
  const node = await rig.nodeOf(rig.gateway1);
  const bodyBytes = 512 * 1024;
  const filler = rig.load.burst(Math.ceil(o.fillerBytes / bodyBytes), [rig.special.fillerChannel], bodyBytes, 'filler', 2);
  await sleep(300);
  const killedAt = Date.now();
  await node.kill();
  tl.fault(`kill -9 ${node.name} (gateway-1's node) under ${o.rate}/s, ${Math.round(o.fillerBytes / 1048576)} MiB of filler being stored`);
  await sleep(t.faultMs);
  await node.start();
  tl.cleared(`${node.name} restarted`);
  await filler;
  tl.note('filler stored');
  await sleep(Math.min(3_000, t.settleMs));
  rig.load.resetRate();
  tl.note('load back to normal');
  await sleep(Math.max(0, t.settleMs - 3_000));
  tl.note(describeCatchUp(rig, killedAt, o.heldLimit));
  tl.end();
}

/**
 * What gateway 1's catch-up after `since` went through: from its reconnect to the
 * end of the catch-up every stored message is held, so the acknowledgements in that
 * window bound how many it had to hold (the shared channel alone is a third of them).
 */
function describeCatchUp(rig: Rig, since: number, heldLimit: number): string {
  const logs = rig.gateway1.logs.filter((l) => l.at >= since);
  const reconnected = logs.find((l) => l.msg === 'nats reconnected');
  const caught = logs.find((l) => l.msg === 'caught up' && (reconnected === undefined || l.at >= reconnected.at));
  if (reconnected === undefined || caught === undefined) return `gateway-1 catch-up: ${reconnected ? 'no "caught up" logged' : 'no reconnect logged'}`;
  const acked = rig.load.history.filter((p) => p.ackAt !== undefined && p.ackAt >= reconnected.at && p.ackAt <= caught.at).length;
  return (
    `gateway-1 reconnected at +${((reconnected.at - since) / 1000).toFixed(1)}s after the kill, caught up (${String(caught.fields.reason)}) ` +
    `after ${String(caught.fields.durationMs)} ms with ${String(caught.fields.count)} messages; ${acked} publishes acknowledged meanwhile ` +
    `(held limit ${heldLimit}: ${acked > heldLimit ? 'overflowed' : 'probably not reached'})`
  );
}

/**
 * Filler traffic on a channel nobody listens to ages the stream to many file-store
 * blocks while a client sleeps; a few messages to that client are interleaved, so
 * its replay walks across the blocks.
 */
export async function agedStream(rig: Rig, filler: { bytes: number; bodyBytes: number; every: number }, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('aged-stream');
  const { agedSleeper, agedSleeperChannel, fillerChannel } = rig.special;
  const leader = await rig.leaderNode();
  const blocksBefore = streamBlockCount(leader.storeDir);
  let wake!: () => void;
  const slept = agedSleeper.sleepUntil(new Promise<void>((r) => (wake = r)));
  const count = Math.ceil(filler.bytes / filler.bodyBytes);
  tl.fault(`${agedSleeper.rec.id} sleeps; ${count} × ${filler.bodyBytes} B filler (${Math.round(filler.bytes / 1048576)} MiB), one message to it every ${filler.every}`);
  const started = Date.now();
  await rig.load.burst(count, [fillerChannel], filler.bodyBytes, 'filler', 4, (i) => {
    if (i % filler.every === 0) void rig.load.publishOne([agedSleeperChannel], 'aged-replay', rig.opts.bodyBytes);
  });
  const blocksAfter = streamBlockCount(leader.storeDir);
  tl.note(`filler took ${Date.now() - started} ms; blocks of PUSH_MESSAGES on ${leader.name}: ${blocksBefore} → ${blocksAfter}`);
  await sleep(Math.max(0, t.faultMs - (Date.now() - started)));
  wake();
  await slept;
  tl.cleared(`${agedSleeper.rec.id} reconnects with its mid`);
  await sleep(t.settleMs);
  tl.end();
}

/** Several faults overlapping: leader node, a gateway, sleeping clients, the publisher. */
export async function combined(rig: Rig, t: Timing & { stepMs: number }): Promise<void> {
  const tl = rig.timeline;
  tl.begin('combined');
  const node = await rig.leaderNode();
  await node.kill();
  tl.fault(`kill -9 ${node.name} (stream leader)`);
  await sleep(t.stepMs);
  await rig.gateway2.kill9();
  tl.note('kill -9 gateway-2');
  await sleep(t.stepMs / 2);
  const sleepers = rig.rng.shuffle(rig.ordinary).slice(0, Math.ceil(rig.ordinary.length / 3));
  const sleeping = Promise.all(sleepers.map((s) => s.sleep(t.faultMs)));
  tl.note(`${sleepers.length} clients sleep ${t.faultMs} ms: ${sleepers.map((s) => s.rec.id).join(', ')}`);
  await sleep(t.stepMs);
  await rig.publisher.kill9();
  tl.note('kill -9 publisher');
  await sleep(t.stepMs);
  await node.start();
  tl.note(`${node.name} restarted`);
  await sleep(t.stepMs / 2);
  await Promise.all([rig.gateway2.start(), rig.publisher.start()]);
  tl.note('gateway-2 and publisher restarted (ready)');
  await sleeping;
  tl.cleared('every fault cleared');
  await sleep(t.settleMs);
  tl.end();
}

/**
 * PUSH_MESSAGES is deleted under the running processes (after a quiesce, so no
 * acknowledged message is still on its way). If jetpull does not recreate it within
 * `selfMs`, the suite recreates it with the configuration it had, as an operator
 * would. Then publishing must recover and every message acknowledged from then on
 * must reach the clients.
 */
export async function streamRecreate(rig: Rig, selfMs: number, t: Timing): Promise<void> {
  const tl = rig.timeline;
  tl.begin('quiesce-before-recreate');
  const q = await rig.quiesce(20_000);
  tl.note(`load paused; ${q.complete ? 'every acknowledged message delivered' : `${q.missing} deliveries still missing`} after ${q.waitedMs} ms`);
  await rig.auditUndelivered();
  const before = await rig.admin.info(5_000);
  const config = before?.config;
  tl.begin('stream-recreate');
  if (config === undefined) {
    tl.note(`stream info unavailable (${JSON.stringify(before?.error)}); skipped`);
    rig.load.start();
    await sleep(t.settleMs);
    tl.end();
    return;
  }
  const del = await rig.admin.deleteStream();
  tl.fault(`PUSH_MESSAGES deleted (${JSON.stringify(del.error ?? 'ok')}; had ${before?.state?.messages} messages, last seq ${before?.state?.last_seq}, created ${before?.created})`);
  rig.load.start();
  const self = await waitFor(async () => (await rig.admin.info())?.config !== undefined, selfMs, 250);
  if (self) {
    tl.cleared(`jetpull recreated PUSH_MESSAGES by itself (created ${(await rig.admin.info())?.created})`);
  } else {
    const created = await rig.admin.createStream(config);
    tl.cleared(`jetpull did not recreate PUSH_MESSAGES within ${selfMs} ms; the suite recreated it (${JSON.stringify(created.error ?? 'ok')}, created ${created.created})`);
  }
  const recovered = await waitFor(() => rig.load.history.some((p) => p.ackAt !== undefined && p.ackAt > tl.phases.at(-1)!.clearedAt!), 20_000, 100);
  tl.note(recovered ? 'publishing recovered' : 'no publish acknowledged within 20 s of the recreation');
  await sleep(t.settleMs);
  tl.end();
}
