import type { ClientRec } from './delivery-record.ts';

/** A gateway as a client sees it: a name for the records and its addresses. */
export interface GatewayRef {
  readonly name: string;
  wsBase(): string;
  base(): string;
}

export interface SubscriberSpec {
  id: string;
  /** CHANNEL_ID as the official client sends it: `<private token>/<shared token>`. */
  channelId: string;
  /** Channel ids a publish addresses this client by. */
  channels: string[];
  gateways: readonly GatewayRef[];
}

/** What the fault timeline can do with any client, whatever its transport. */
export interface Subscriber {
  readonly rec: ClientRec;
  start(): void;
  /** Disconnects now and comes back with its mid after `ms` (resolves then). */
  sleep(ms: number): Promise<void>;
  /** Disconnects now and comes back with its mid once `wake` settles. */
  sleepUntil(wake: Promise<unknown>): Promise<void>;
  /** Stops for good: it no longer counts as alive at the end. */
  stop(): void;
  /** Stops at the end of a run (still counts as alive). */
  close(): void;
}
