import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayActor } from '../gateway/gateway-actor.ts';
import type { NatsLink } from '../nats/connection.ts';
import type { PublisherActor } from '../publisher/publisher-actor.ts';
import type { Telemetry } from './telemetry.ts';

export interface MetricsSources {
  link: NatsLink;
  publisher: () => PublisherActor | undefined;
  gateway: () => GatewayActor | undefined;
}

/**
 * The Prometheus registry of one process. Counters and histograms are fed through
 * the Telemetry interface; gauges are read from the actors when scraped, so the hot
 * paths carry no metric bookkeeping beyond a few increments.
 */
export class Metrics implements Telemetry {
  readonly registry = new Registry();
  private readonly publishSeconds: Histogram<'path' | 'result'>;
  private readonly replaySeconds: Histogram;
  private readonly replayMessages: Counter;
  private readonly messagesDelivered: Counter;
  private readonly bytesDelivered: Counter;
  private readonly slowClients: Counter;
  private readonly admission: Counter<'reason'>;
  private reconnects = 0;

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
    this.slowClients = new Counter({ name: 'jetpull_slow_client_disconnects_total', help: 'Connections closed because their outbox exceeded gateway.maxOutboxBytes.', registers: [r] });
    this.admission = new Counter({
      name: 'jetpull_admission_rejections_total',
      help: 'Connections or publishes refused with 503 by admission control.',
      labelNames: ['reason'],
      registers: [r],
    });
    sources.link.onReconnect(() => this.reconnects++);

    new Gauge({
      name: 'jetpull_connections',
      help: 'Open client connections by transport and mode.',
      labelNames: ['transport', 'mode'],
      registers: [r],
      collect() {
        this.reset();
        const g = sources.gateway();
        if (g === undefined) return;
        for (const [key, count] of Object.entries(g.connectionsByKind())) {
          const [transport, mode] = key.split('/') as [string, string];
          this.set({ transport, mode }, count);
        }
      },
    });
    new Gauge({
      name: 'jetpull_long_polls_held',
      help: 'Long-poll requests currently held.',
      registers: [r],
      collect() {
        this.set(sources.gateway()?.stats().pollings ?? 0);
      },
    });
    new Gauge({
      name: 'jetpull_channels_subscribed',
      help: 'Channels this gateway holds a live subscription for.',
      registers: [r],
      collect() {
        this.set(sources.gateway()?.hub.stats().channels ?? 0);
      },
    });
    new Gauge({
      name: 'jetpull_replays_running',
      help: 'Replays reading from JetStream now, and waiting for a slot.',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const s = sources.gateway()?.stats();
        this.set({ state: 'running' }, s?.replaysRunning ?? 0);
        this.set({ state: 'waiting' }, s?.replaysWaiting ?? 0);
      },
    });
    const hubCounter = (name: string, help: string, pick: (h: ReturnType<GatewayActor['hub']['stats']>) => number): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          const g = sources.gateway();
          if (g === undefined) return;
          this.reset();
          this.inc(pick(g.hub.stats()));
        },
      });
    };
    new Counter({
      name: 'jetpull_replay_reads_total',
      help: 'Direct gets from the stream made by replays (channels the gateway already knows are skipped).',
      registers: [r],
      collect() {
        const g = sources.gateway();
        if (g === undefined) return;
        this.reset();
        this.inc(g.stats().replayReads);
      },
    });
    hubCounter('jetpull_live_messages_total', 'Live messages received from NATS.', (h) => h.messagesIn);
    hubCounter('jetpull_gaps_filled_total', 'Gaps in a channel\'s live messages filled from the stream.', (h) => h.gapsFilled);
    hubCounter('jetpull_catch_ups_total', 'Whole-stream catch-ups after a reconnect or leader change.', (h) => h.catchUps);
    new Gauge({
      name: 'jetpull_publisher_in_flight',
      help: 'JetStream writes awaiting acknowledgement, and commands queued for a write slot.',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const s = sources.publisher()?.stats();
        this.set({ state: 'in_flight' }, s?.inFlight ?? 0);
        this.set({ state: 'queued' }, s?.queued ?? 0);
      },
    });
    new Gauge({
      name: 'jetpull_nats_connected',
      help: '1 while the NATS connection is up.',
      registers: [r],
      collect() {
        this.set(sources.link.connected ? 1 : 0);
      },
    });
    const metrics = this;
    new Counter({
      name: 'jetpull_nats_reconnects_total',
      help: 'NATS reconnections since start.',
      registers: [r],
      collect() {
        this.reset();
        this.inc(metrics.reconnects);
      },
    });
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

  slowClientClosed(): void {
    this.slowClients.inc();
  }

  admissionRefused(reason: string): void {
    this.admission.inc({ reason });
  }
}
