/**
 * What the actors report about themselves, without knowing how it is exported.
 * Every method is a cheap counter or histogram update; `NO_TELEMETRY` does nothing.
 */
export interface Telemetry {
  /** A publish command finished (stored or failed) after `durationMs`. */
  publishDone(path: PublishPath, ok: boolean, durationMs: number): void;
  replayDone(durationMs: number, messages: number): void;
  /** Bytes written to client sockets (frames or long-poll bodies) and the messages in them. */
  delivered(messages: number, bytes: number): void;
  slowClientClosed(): void;
  admissionRefused(reason: 'connection-rate' | 'replay-queue' | 'draining' | 'mailbox'): void;
}

export type PublishPath = 'http_text' | 'http_protobuf' | 'nats' | 'client';

export const NO_TELEMETRY: Telemetry = {
  publishDone() {},
  replayDone() {},
  delivered() {},
  slowClientClosed() {},
  admissionRefused() {},
};
