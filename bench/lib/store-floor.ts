import { jetstream, jetstreamManager, type StreamConfig } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { runPaced } from './publish.ts';
import type { Percentiles } from './stats.ts';
import { log, randomHexId } from './util.ts';

/** The stream jetpull stores messages in; the floor copies its settings. */
const MESSAGE_STREAM = 'PUSH_MESSAGES';
const FLOOR_STREAM = 'BENCH_STORE_FLOOR';

export interface StoreFloorResult {
  /** Publish → acknowledgement of a stored write, nothing else on the path. */
  ackMs: Percentiles;
  achievedRate: number;
  failed: number;
}

/**
 * The stored write alone, on the same nats-server at the same rate: a stream with
 * PUSH_MESSAGES's settings (file storage, age limit, duplicate window, republish to a
 * subscriber in this process), each publish with a message id, as jetpull's publisher
 * does. Every jetpull message waits for this acknowledgement before it is delivered, so
 * its p99 is the floor under jetpull's delivery p99 on this machine.
 */
export async function measureStoreFloor(natsUrl: string, opts: { rate: number; durationMs: number; maxInFlight: number; bodyBytes: number; receivers: number; deadline: number }): Promise<StoreFloorResult> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const pushMessages = (await jsm.streams.info(MESSAGE_STREAM)).config;
    const config: Partial<StreamConfig> & { name: string } = {
      name: FLOOR_STREAM,
      subjects: ['bench.floor.msg.>'],
      storage: pushMessages.storage,
      max_age: pushMessages.max_age,
      duplicate_window: pushMessages.duplicate_window,
      num_replicas: pushMessages.num_replicas,
      allow_direct: true,
      republish: { src: 'bench.floor.msg.>', dest: 'bench.floor.live.>' },
    };
    await jsm.streams.delete(FLOOR_STREAM).catch(() => undefined);
    await jsm.streams.add(config);
    const republished = nc.subscribe('bench.floor.live.>', { callback: () => undefined });
    const js = jetstream(nc);
    const body = Buffer.from('x'.repeat(opts.bodyBytes));
    const run = randomHexId();
    log(`store floor: publishing ${opts.rate}/s for ${opts.durationMs / 1000} s straight to JetStream`);
    const paced = await runPaced({
      rate: opts.rate,
      durationMs: opts.durationMs,
      maxInFlight: opts.maxInFlight,
      deadline: opts.deadline,
      fire: async (i) => {
        const h = headers();
        h.set('Nats-Msg-Id', `${run}-${i}`);
        await js.publish(`bench.floor.msg.priv.${Math.floor(Math.random() * opts.receivers)}`, body, { headers: h });
      },
    });
    republished.unsubscribe();
    await jsm.streams.delete(FLOOR_STREAM).catch(() => undefined);
    return { ackMs: paced.ack.summary(), achievedRate: Math.round(paced.achievedRate * 10) / 10, failed: paced.failed };
  } finally {
    await nc.close();
  }
}
