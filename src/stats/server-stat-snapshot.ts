import type { Config } from '../config/schema.ts';
import type { GatewayStats } from '../telemetry/telemetry.ts';
import type { DailyCounters } from './daily-counters.ts';
import type { ServerStat } from './server-stats.ts';

/** This process's `/server-stat/` entry now (spec §5.5); a process without a gateway counts no connections. */
export function serverStatSnapshot(config: Config, gateway: () => GatewayStats | undefined, counters: DailyCounters): () => ServerStat {
  const limits = {
    maxPayload: config.limits.maxPayloadBytes,
    maxConnPerChannel: config.limits.maxConnPerChannel,
    maxMessagesPerRequest: config.limits.maxMessagesPerRequest,
    maxChannelsPerRequest: config.limits.maxChannelsPerRequest,
  };
  return () => {
    const g = gateway();
    return {
      pid: process.pid,
      date: Date.now(),
      processUniqueId: config.processUniqueId,
      channels: g?.privateChannels ?? 0,
      limits,
      clusterMode: true,
      websockets: g?.websockets ?? 0,
      pollings: g?.pollings ?? 0,
      daily: counters.snapshot(),
    };
  };
}
