/**
 * What the actors report about themselves, without knowing how it is exported.
 * Events go through `Telemetry` (cheap counter and histogram updates on the hot
 * paths); state is read on demand through the `*Stats` snapshots. The exporter
 * (`metrics/`) reads these interfaces and nothing of the actors themselves.
 */
export interface Telemetry {
  /** A publish command finished (stored or failed) after `durationMs`. */
  publishDone(path: PublishPath, ok: boolean, durationMs: number): void;
  replayDone(durationMs: number, messages: number): void;
  /** Bytes written to client sockets (frames or long-poll bodies) and the messages in them. */
  delivered(messages: number, bytes: number): void;
  /** A connection closed as too slow: its own queue over gateway.maxOutboxBytes, or among the largest when the process's queues passed gateway.maxOutboundBytes. */
  slowClientClosed(limit: SlowLimit): void;
  admissionRefused(reason: Refusal): void;
  /** A client request over its rate (ClientRate): made to wait (WebSocket) or refused with 429 (POST). */
  clientRequestLimited(action: 'delayed' | 'refused', by: 'public-id' | 'ip'): void;
}

/** Which entry point a publish came through. */
export type PublishPath = 'http_text' | 'http_protobuf' | 'http_jsonrpc' | 'nats' | 'client';

/**
 * Why a connection or a publish was not taken: 503 for what is the process's state
 * (another process may take it), 429 for what is the client address's own doing
 * (`-per-ip`). See errors/refusals.ts.
 */
export type Refusal =
  | 'draining'
  | 'connection-rate'
  | 'replay-queue'
  | 'mailbox'
  | 'client-mailbox'
  | 'connections'
  | 'memory'
  | 'connections-per-ip'
  | 'connection-rate-per-ip';

/** Which outbox limit closed a slow connection. */
export type SlowLimit = 'connection' | 'process';

/** The portal's publishes (trusted entry points) and the clients' have separate lanes. */
export type PublishLane = 'portal' | 'client';

export interface PublisherStats {
  readonly published: number;
  readonly failed: number;
  readonly rejectedOverloaded: number;
  /** JetStream writes awaiting acknowledgement. */
  readonly inFlight: number;
  /** Commands waiting for a write slot. */
  readonly queued: number;
}

export interface GatewayStats {
  readonly websockets: number;
  readonly pollings: number;
  /** Open connections by `<transport>/<format>` (`ws/text`, `longpoll/binary`, …). */
  readonly connectionsByKind: Readonly<Record<string, number>>;
  /** Private channels with at least one local connection. */
  readonly privateChannels: number;
  /** Channels this gateway holds a live subscription for. */
  readonly channelsSubscribed: number;
  readonly replaysRunning: number;
  readonly replaysWaiting: number;
  /** Direct gets made by replays so far. */
  readonly replayReads: number;
  /** Replays served from the recent messages in memory so far (no stream read). */
  readonly replaysFromMemory: number;
  /** Bytes of recent messages kept for replays from memory (gateway.recentMessagesBytes). */
  readonly recentMessagesBytes: number;
  /** Live messages received from NATS so far. */
  readonly messagesIn: number;
  readonly deliveries: number;
  readonly gapsFilled: number;
  readonly catchUps: number;
  /** Bytes queued for WebSockets (unsent plus socket buffers), as last counted. */
  readonly outboundBytes: number;
  /** True while memory is above gateway.memoryWatermarkBytes. */
  readonly memoryHigh: boolean;
}

export interface NatsStats {
  readonly connected: boolean;
  readonly reconnects: number;
}

export interface StreamStats {
  /** Age of the oldest message held: how far back a client can resume; undefined while empty. */
  readonly replayWindowSec: number | undefined;
  readonly messages: number;
  readonly bytes: number;
}
