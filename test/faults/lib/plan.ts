import { agedStream, baseline, catchUpOverflow, clientSleep, combined, gatewayKill, leaderKill, nodePause, outboxReplay, publisherKill, streamRecreate } from './faults.ts';
import type { Rig } from './rig.ts';
import type { Rng } from './rng.ts';

/**
 * Which faults run, in which order, with which timings. The CI plan runs each
 * fault once with fixed short timings, then the combined phase, then the stream
 * recreation (last: it resets message positions for everything after it). The long
 * plan draws faults and timings from a seed until its duration is used up.
 */

export interface Step {
  name: string;
  /** The timings it runs with, for the printed plan. */
  detail: string;
  run(rig: Rig): Promise<void>;
}

export interface PlanOptions {
  /** Bytes of filler for the aged-stream phase. */
  fillerBytes: number;
  outboxBytes: number;
  /** PUSH_GATEWAY__MAX_CATCH_UP_HELD_MESSAGES of the gateways. */
  heldLimit: number;
}

const step = (name: string, run: (rig: Rig) => Promise<void>, detail: unknown = ''): Step => ({
  name,
  run,
  detail: typeof detail === 'string' ? detail : JSON.stringify(detail),
});

export function ciPlan(o: PlanOptions): Step[] {
  return [
    step('baseline', (r) => baseline(r, 6_000)),
    step('leader-kill', (r) => leaderKill(r, { faultMs: 6_000, settleMs: 10_000 })),
    step('gateway-kill', (r) => gatewayKill(r, r.gateway1, { faultMs: 4_000, settleMs: 8_000 })),
    step('node-pause', (r) => nodePause(r, r.gateway2, { faultMs: 8_000, settleMs: 10_000 })),
    step('publisher-kill', (r) => publisherKill(r, { faultMs: 3_000, settleMs: 8_000 })),
    step('client-sleep', (r) => clientSleep(r, 1 / 3, { faultMs: 8_000, settleMs: 6_000 })),
    step('outbox-replay', (r) => outboxReplay(r, { messages: 48, bodyBytes: 64 * 1024, outboxBytes: o.outboxBytes }, { faultMs: 5_000, settleMs: 8_000 })),
    step('catch-up-overflow', (r) => catchUpOverflow(r, { rate: 400, fillerBytes: 32 * 1024 * 1024, heldLimit: o.heldLimit }, { faultMs: 3_000, settleMs: 10_000 })),
    step('aged-stream', (r) => agedStream(r, { bytes: o.fillerBytes, bodyBytes: 512 * 1024, every: 6 }, { faultMs: 4_000, settleMs: 8_000 })),
    step('combined', (r) => combined(r, { faultMs: 6_000, settleMs: 12_000, stepMs: 2_000 })),
    step('stream-recreate', (r) => streamRecreate(r, 8_000, { faultMs: 0, settleMs: 12_000 })),
  ];
}

/** Faults drawn from the seed, with timings drawn around the CI ones, until `durationMs` is used up. */
export function randomPlan(rng: Rng, durationMs: number, o: PlanOptions & { recreate: boolean }): Step[] {
  const ms = (min: number, max: number): number => Math.round(rng.between(min, max));
  const makers: Array<() => { step: Step; estimateMs: number }> = [
    () => {
      const t = { faultMs: ms(2_000, 15_000), settleMs: ms(5_000, 15_000) };
      return { step: step('leader-kill', (r) => leaderKill(r, t), t), estimateMs: t.faultMs + t.settleMs + 3_000 };
    },
    () => {
      const t = { faultMs: ms(1_000, 10_000), settleMs: ms(4_000, 12_000) };
      const second = rng.next() < 0.5;
      return { step: step('gateway-kill', (r) => gatewayKill(r, second ? r.gateway2 : r.gateway1, t), { ...t, gateway: second ? 2 : 1 }), estimateMs: t.faultMs + t.settleMs + 5_000 };
    },
    () => {
      const t = { faultMs: ms(2_000, 20_000), settleMs: ms(5_000, 15_000) };
      const second = rng.next() < 0.5;
      return { step: step('node-pause', (r) => nodePause(r, second ? r.gateway2 : r.gateway1, t), { ...t, nodeOfGateway: second ? 2 : 1 }), estimateMs: t.faultMs + t.settleMs };
    },
    () => {
      const t = { faultMs: ms(1_000, 10_000), settleMs: ms(4_000, 10_000) };
      return { step: step('publisher-kill', (r) => publisherKill(r, t), t), estimateMs: t.faultMs + t.settleMs + 5_000 };
    },
    () => {
      const t = { faultMs: ms(2_000, 30_000), settleMs: ms(4_000, 10_000) };
      const share = rng.between(0.2, 0.7);
      return { step: step('client-sleep', (r) => clientSleep(r, share, t), { ...t, share: Math.round(share * 100) / 100 }), estimateMs: t.faultMs + t.settleMs + 1_000 };
    },
    () => {
      const t = { faultMs: ms(3_000, 10_000), settleMs: ms(6_000, 12_000) };
      const messages = ms(40, 120);
      return { step: step('outbox-replay', (r) => outboxReplay(r, { messages, bodyBytes: 64 * 1024, outboxBytes: o.outboxBytes }, t), { ...t, messages }), estimateMs: t.faultMs + t.settleMs };
    },
    () => {
      const t = { faultMs: ms(1_000, 8_000), settleMs: ms(6_000, 12_000) };
      const rate = ms(200, 500);
      return { step: step('catch-up-overflow', (r) => catchUpOverflow(r, { rate, fillerBytes: o.fillerBytes, heldLimit: o.heldLimit }, t), { ...t, rate }), estimateMs: t.faultMs + t.settleMs + 1_000 };
    },
    () => {
      const t = { faultMs: ms(2_000, 6_000), settleMs: ms(6_000, 10_000) };
      return { step: step('aged-stream', (r) => agedStream(r, { bytes: o.fillerBytes, bodyBytes: 512 * 1024, every: 6 }, t), { ...t, fillerBytes: o.fillerBytes }), estimateMs: 25_000 + t.settleMs };
    },
    () => {
      const t = { faultMs: ms(4_000, 15_000), settleMs: ms(8_000, 15_000), stepMs: ms(1_000, 4_000) };
      return { step: step('combined', (r) => combined(r, t), t), estimateMs: t.stepMs * 4 + t.faultMs + t.settleMs + 8_000 };
    },
  ];
  const steps: Step[] = [step('baseline', (r) => baseline(r, 5_000), { ms: 5_000 })];
  let used = 5_000;
  const reserve = o.recreate ? 45_000 : 0;
  while (used < durationMs - reserve) {
    const { step: s, estimateMs } = rng.pick(makers)();
    steps.push(s);
    used += estimateMs;
  }
  if (o.recreate) steps.push(step('stream-recreate', (r) => streamRecreate(r, 8_000, { faultMs: 0, settleMs: 15_000 }), { selfMs: 8_000, settleMs: 15_000 }));
  return steps;
}
