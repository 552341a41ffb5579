import type { Config } from '../config/schema.ts';
import type { GatewayStats } from '../telemetry/telemetry.ts';
import type { ReplayWindow } from './replay-window.ts';
import type { DailyCounters } from './daily-counters.ts';
import type { ServerStat } from './server-stats.ts';

/**
 * This process's `/server-stat/` entry now (spec §5.5), with the limits in force; a
 * process without a gateway counts no connections.
 */
export function serverStatSnapshot(
  config: Config,
  effective: Config['limits'],
  gateway: () => GatewayStats | undefined,
  counters: DailyCounters,
  replayWindow: () => ReplayWindow,
  /** Signature keys in force (0: none, unsigned private ids are accepted). */
  signatureKeys: number,
): () => ServerStat {
  const limits = {
    maxPayload: effective.maxPayloadBytes,
    maxConnPerChannel: effective.maxConnPerChannel,
    maxMessagesPerRequest: effective.maxMessagesPerRequest,
    maxChannelsPerRequest: effective.maxChannelsPerRequest,
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
      jetpull: extras(replayWindow(), config, signatureKeys),
    };
  };
}

/** Additions under one key of jetpull's own, beside the reference's fields, which the portal reads as before. */
function extras(window: ReplayWindow, config: Config, signatureKeys: number): NonNullable<ServerStat['jetpull']> {
  const warnings: string[] = [];
  if (signatureKeys === 0) warnings.push('no security.key: unsigned private channel ids are accepted, anyone who knows a channel id can subscribe to it');
  if (window.shortened) warnings.push(`replay window ${window.seconds} s is shorter than storage.messageTtlSec ${config.storage.messageTtlSec} s (stream byte limit)`);
  return { replayWindowSec: window.seconds ?? null, signatureKeys, warnings };
}
