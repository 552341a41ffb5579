import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayStats, NatsStats, PublisherStats, PublishLane, Refusal, SlowLimit, StreamStats, Telemetry } from '../telemetry/telemetry.ts';

/** Where the exporter reads state when scraped; an absent role answers undefined. */
export interface MetricsSources {
  nats(): NatsStats;
  /** Each publish lane's state (publisher/publisher-actor.ts); undefined in role gateway. */
  publishers(): Record<PublishLane, PublisherStats> | undefined;
  gateway(): GatewayStats | undefined;
  /** The message stream as last seen; undefined before the first check. */
  stream(): StreamStats | undefined;
}

/**
 * The Prometheus registry of one process. Counters and histograms are fed through
 * the Telemetry interface; gauges and totals kept by the actors are read from their
 * stats snapshots when scraped, so the hot paths carry no metric bookkeeping beyond
 * a few increments.
 */
export class Metrics implements Telemetry {
  readonly registry = new Registry();
  private readonly publishSeconds: Histogram<'path' | 'result'>;
  private readonly replaySeconds: Histogram;
  private readonly replayMessages: Counter;
  private readonly messagesDelivered: Counter;
  private readonly bytesDelivered: Counter;
  private readonly slowClients: Counter<'limit'>;
  private readonly admission: Counter<'reason'>;
  private readonly clientLimited: Counter<'action' | 'by'>;

  constructor(sources: MetricsSources, labels: Record<string, string>) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    collectDefaultMetrics({ register: r, prefix: 'jetpull_' });
    this.publishSeconds = new Histogram({
      name: 'jetpull_publish_duration_seconds',
      help: 'Time from a publish command to its acknowledgement by JetStream (or failure).',
      labelNames: ['path', 'result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
    });
    this.replaySeconds = new Histogram({
      name: 'jetpull_replay_duration_seconds',
      help: 'Time to read what a reconnecting client missed.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers: [r],
    });
    this.replayMessages = new Counter({ name: 'jetpull_replay_messages_total', help: 'Messages sent by replays.', registers: [r] });
    this.messagesDelivered = new Counter({ name: 'jetpull_messages_delivered_total', help: 'Messages written to client connections.', registers: [r] });
    this.bytesDelivered = new Counter({ name: 'jetpull_bytes_delivered_total', help: 'Bytes written to client connections.', registers: [r] });
    this.slowClients = new Counter({
      name: 'jetpull_slow_client_disconnects_total',
      help: 'Connections closed (4008) as too slow: limit="connection" when their own outbox exceeded gateway.maxOutboxBytes, "process" when they had the largest queues while all together exceeded gateway.maxOutboundBytes.',
      labelNames: ['limit'],
      registers: [r],
    });
    this.admission = new Counter({
      name: 'jetpull_admission_rejections_total',
      help: "Connections or publishes refused by admission control, by reason: 503 for draining, connection-rate, replay-queue, mailbox (the portal's publish lane), client-mailbox (the clients' lane), connections (gateway.maxConnections), memory (gateway.memoryWatermarkBytes); 429 for connections-per-ip and connection-rate-per-ip.",
      labelNames: ['reason'],
      registers: [r],
    });
    this.clientLimited = new Counter({
      name: 'jetpull_client_requests_limited_total',
      help: 'Client requests over limits.clientRequestsPerSec (by public id) or limits.restRequestsPerIpPerSec (by address): made to wait, or refused with 429.',
      labelNames: ['action', 'by'],
      registers: [r],
    });

    new Gauge({
      name: 'jetpull_connections',
      help: 'Open client connections by transport and mode.',
      labelNames: ['transport', 'mode'],
      registers: [r],
      collect() {
        this.reset();
        const g = sources.gateway();
        if (g === undefined) return;
        for (const [key, count] of Object.entries(g.connectionsByKind)) {
          const [transport, mode] = key.split('/') as [string, string];
          this.set({ transport, mode }, count);
        }
      },
    });
    const gatewayGauge = (name: string, help: string, pick: (g: GatewayStats) => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(pick(sources.gateway() ?? EMPTY_GATEWAY));
        },
      });
    };
    gatewayGauge('jetpull_long_polls_held', 'Long-poll requests currently held.', (g) => g.pollings);
    gatewayGauge('jetpull_recent_messages_bytes', 'Bytes of recent messages kept for replays from memory; compare with gateway.recentMessagesBytes.', (g) => g.recentMessagesBytes);
    gatewayGauge('jetpull_channels_subscribed', 'Channels this gateway holds a live subscription for.', (g) => g.channelsSubscribed);
    gatewayGauge('jetpull_outbound_queued_bytes', 'Bytes queued for all WebSockets (unsent plus socket buffers) as last counted; compare with gateway.maxOutboundBytes.', (g) => g.outboundBytes);
    gatewayGauge('jetpull_memory_above_watermark', '1 while resident memory is above gateway.memoryWatermarkBytes: not ready, new connections refused.', (g) => (g.memoryHigh ? 1 : 0));
    new Gauge({
      name: 'jetpull_replays_running',
      help: 'Replays reading from JetStream now, and waiting for a slot.',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const g = sources.gateway() ?? EMPTY_GATEWAY;
        this.set({ state: 'running' }, g.replaysRunning);
        this.set({ state: 'waiting' }, g.replaysWaiting);
      },
    });
    const total = (name: string, help: string, read: () => number | undefined): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          const value = read();
          if (value === undefined) return;
          this.reset();
          this.inc(value);
        },
      });
    };
    total('jetpull_replay_reads_total', 'Direct gets from the stream made by replays (channels the gateway already knows are skipped).', () => sources.gateway()?.replayReads);
    total('jetpull_replays_from_memory_total', 'Replays served from the recent messages the gateway keeps (gateway.recentMessagesBytes), without reading the stream.', () => sources.gateway()?.replaysFromMemory);
    total('jetpull_live_messages_total', 'Live messages received from NATS.', () => sources.gateway()?.messagesIn);
    total('jetpull_gaps_filled_total', "Gaps in a channel's live messages filled from the stream.", () => sources.gateway()?.gapsFilled);
    total('jetpull_catch_ups_total', 'Whole-stream catch-ups after a reconnect or leader change.', () => sources.gateway()?.catchUps);
    new Gauge({
      name: 'jetpull_publisher_in_flight',
      help: "JetStream writes awaiting acknowledgement, and commands queued for a write slot, per lane: portal (backend routes, NATS publish API) and client (browsers' publishes).",
      labelNames: ['lane', 'state'],
      registers: [r],
      collect() {
        const lanes = sources.publishers();
        for (const lane of ['portal', 'client'] as const) {
          this.set({ lane, state: 'in_flight' }, lanes?.[lane].inFlight ?? 0);
          this.set({ lane, state: 'queued' }, lanes?.[lane].queued ?? 0);
        }
      },
    });
    new Gauge({
      name: 'jetpull_nats_connected',
      help: '1 while the NATS connection is up.',
      registers: [r],
      collect() {
        this.set(sources.nats().connected ? 1 : 0);
      },
    });
    total('jetpull_nats_reconnects_total', 'NATS reconnections since start.', () => sources.nats().reconnects);
    const streamGauge = (name: string, help: string, pick: (s: StreamStats) => number | undefined): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const s = sources.stream();
          const v = s === undefined ? undefined : pick(s);
          if (v === undefined) this.reset();
          else this.set(v);
        },
      });
    };
    streamGauge('jetpull_replay_window_seconds', 'Age of the oldest message in the stream: how far back a sleeping client can resume (compare with storage.messageTtlSec).', (s) => s.replayWindowSec);
    streamGauge('jetpull_stream_messages', 'Messages held by the message stream.', (s) => s.messages);
    streamGauge('jetpull_stream_bytes', 'Bytes held by the message stream.', (s) => s.bytes);
  }

  publishDone(path: string, ok: boolean, durationMs: number): void {
    this.publishSeconds.observe({ path, result: ok ? 'ok' : 'error' }, durationMs / 1000);
  }

  replayDone(durationMs: number, messages: number): void {
    this.replaySeconds.observe(durationMs / 1000);
    this.replayMessages.inc(messages);
  }

  delivered(messages: number, bytes: number): void {
    this.messagesDelivered.inc(messages);
    this.bytesDelivered.inc(bytes);
  }

  slowClientClosed(limit: SlowLimit): void {
    this.slowClients.inc({ limit });
  }

  admissionRefused(reason: Refusal): void {
    this.admission.inc({ reason });
  }

  clientRequestLimited(action: 'delayed' | 'refused', by: 'public-id' | 'ip'): void {
    this.clientLimited.inc({ action, by });
  }
}

const EMPTY_GATEWAY: GatewayStats = {
  websockets: 0,
  pollings: 0,
  connectionsByKind: {},
  privateChannels: 0,
  channelsSubscribed: 0,
  replaysRunning: 0,
  replaysWaiting: 0,
  replayReads: 0,
  replaysFromMemory: 0,
  recentMessagesBytes: 0,
  messagesIn: 0,
  deliveries: 0,
  gapsFilled: 0,
  catchUps: 0,
  outboundBytes: 0,
  memoryHigh: false,
};
