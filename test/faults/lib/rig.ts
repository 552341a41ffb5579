import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { newId, newShared, newUser } from '../../helpers/channels.ts';
import { shouldReceive } from './checker.ts';
import { JetpullProcess, type ProcessEvent } from './jetpull-process.ts';
import { LongPollSubscriber } from './long-poll-subscriber.ts';
import { startNatsCluster, type NatsCluster, type NatsNode } from './nats-cluster.ts';
import { registerTempDir, removeTempDir } from './process-reaper.ts';
import { PublishLoad } from './publish-load.ts';
import { Rng } from './rng.ts';
import { StreamAdmin } from './stream-admin.ts';
import type { GatewayRef, Subscriber } from './subscriber.ts';
import { sleep, waitFor } from './time.ts';
import { Timeline } from './timeline.ts';
import { WsSubscriber } from './ws-subscriber.ts';

/**
 * The system under test and its surroundings, all real: a 3-node nats-server
 * cluster, two gateways and one publisher as jetpull processes, subscribers that
 * behave like the official client, and the backend's publish load.
 *
 * Gateway 1 starts on the PUSH_MESSAGES leader's node, gateway 2 on a follower, the
 * publisher on the remaining node where possible; each learns the other nodes from
 * the cluster for failover.
 */

export interface RigOptions {
  seed: number;
  /** Steady publishes per second. */
  rate: number;
  bodyBytes: number;
  wsText: number;
  wsBinary: number;
  longPollText: number;
  longPollBinary: number;
  /** Settings of both gateways (and the publisher where they apply). */
  gatewayEnv: Record<string, string>;
  /** Extra settings of gateway 2 only (the small outbox). */
  gateway2Env: Record<string, string>;
  publisherEnv: Record<string, string>;
  retryDeadlineMs: number;
  log: (line: string) => void;
}

/** Settings the suite runs jetpull with, and why. */
export const SUITE_ENV = {
  common: {
    PUSH_STORAGE__STREAM_REPLICAS: '3',
  },
  gateway: {
    // 304s every 5 s instead of 40 s: long polls resume by Last-Message-Id often.
    PUSH_GATEWAY__LONG_POLL_TIMEOUT_MS: '5000',
    // A SIGTERM at teardown closes connections within 1 s instead of 10 s.
    PUSH_GATEWAY__DRAIN_WINDOW_MS: '1000',
    // A catch-up after a NATS reconnect holds at most 50 live messages (the overflow path).
    PUSH_GATEWAY__MAX_CATCH_UP_HELD_MESSAGES: '50',
  },
  gateway2: {
    // Gateway 2 queues at most 2 MiB per connection (4008 beyond): the replay-larger-than-outbox
    // case. jetpull wants the outbox to hold two of the largest message (1 MiB). A lower
    // limits.maxPayloadBytes here instead would shrink the shared stream's max_msg_size for
    // every process, since each one applies its limits to PUSH_MESSAGES at start.
    PUSH_GATEWAY__MAX_OUTBOX_BYTES: '2097152',
  },
} as const;

/** The limits the plan's faults are sized against. */
export const SUITE_LIMITS = {
  outboxBytes: Number(SUITE_ENV.gateway2.PUSH_GATEWAY__MAX_OUTBOX_BYTES),
  heldLimit: Number(SUITE_ENV.gateway.PUSH_GATEWAY__MAX_CATCH_UP_HELD_MESSAGES),
};

export const DEFAULT_RIG: Omit<RigOptions, 'log'> = {
  seed: 1,
  rate: 40,
  bodyBytes: 200,
  wsText: 8,
  wsBinary: 2,
  longPollText: 5,
  longPollBinary: 1,
  gatewayEnv: { ...SUITE_ENV.common, ...SUITE_ENV.gateway },
  gateway2Env: { ...SUITE_ENV.gateway2 },
  publisherEnv: { ...SUITE_ENV.common },
  retryDeadlineMs: 60_000,
};

export interface Special {
  /** Pinned to gateway 2 (small outbox); sleeps through more than its outbox. */
  outboxSleeper: WsSubscriber;
  outboxSleeperChannel: string;
  /** Sleeps while filler traffic ages the stream to many blocks. */
  agedSleeper: WsSubscriber;
  agedSleeperChannel: string;
  /** A channel nobody listens to: large filler bodies go there. */
  fillerChannel: string;
}

export class Rig {
  readonly rng: Rng;
  readonly runId = randomBytes(4).toString('hex');
  readonly processEvents: ProcessEvent[] = [];
  readonly timeline: Timeline;
  cluster!: NatsCluster;
  admin!: StreamAdmin;
  gateway1!: JetpullProcess;
  gateway2!: JetpullProcess;
  publisher!: JetpullProcess;
  clients: Subscriber[] = [];
  /** Clients the generic faults (sleeps) may pick: not the special ones. */
  ordinary: Subscriber[] = [];
  special!: Special;
  load!: PublishLoad;
  /** Stream copies of channels read during the run, per channel key → n → seqs (merged across stream incarnations). */
  readonly stored = new Map<string, Map<number, number[]>>();
  private dir = '';

  constructor(readonly opts: RigOptions) {
    this.rng = new Rng(opts.seed);
    this.timeline = new Timeline(opts.log);
  }

  get processes(): JetpullProcess[] {
    return [this.gateway1, this.gateway2, this.publisher].filter((p) => p !== undefined);
  }

  async start(): Promise<void> {
    const log = this.opts.log;
    this.dir = mkdtempSync(join(tmpdir(), 'jetpull-faults-'));
    registerTempDir(this.dir);
    const t0 = Date.now();
    this.cluster = await startNatsCluster(this.dir);
    this.admin = await StreamAdmin.open(this.cluster.urls);
    await this.admin.waitForJetStream();
    log(`cluster up in ${Date.now() - t0} ms (${this.cluster.binary})`);

    // The publisher creates the streams; then the gateways go where the leader is.
    this.publisher = await JetpullProcess.create('publisher', 'publisher', this.cluster.nodes[2]!.url, this.opts.publisherEnv, this.processEvents);
    await this.publisher.start();
    const leader = this.cluster.node(await this.admin.leader());
    const followers = this.cluster.nodes.filter((n) => n !== leader);
    const follower = followers.find((n) => n.url !== this.publisher.nats) ?? followers[0]!;
    this.gateway1 = await JetpullProcess.create('gateway-1', 'gateway', leader.url, this.opts.gatewayEnv, this.processEvents);
    this.gateway2 = await JetpullProcess.create('gateway-2', 'gateway', follower.url, { ...this.opts.gatewayEnv, ...this.opts.gateway2Env }, this.processEvents);
    await Promise.all([this.gateway1.start(), this.gateway2.start()]);
    log(`jetpull up in ${Date.now() - t0} ms: stream leader ${leader.name}; gateway-1 on ${leader.name}, gateway-2 on ${follower.name}, publisher on ${this.nodeName(this.publisher.nats)}`);

    this.makeClients();
    for (const c of this.clients) c.start();
    this.load = new PublishLoad(
      () => this.publisher.base,
      { shared: this.sharedId, privates: this.clients.map((c) => c.rec.channels[0]!) },
      this.rng,
      { rate: this.opts.rate, retryDeadlineMs: this.opts.retryDeadlineMs, bodyBytes: this.opts.bodyBytes },
      this.runId,
    );
    // Warm-up: shared messages until every client has its first delivery (it is subscribed from then on).
    const subscribed = waitFor(() => this.clients.every((c) => c.rec.subscribedAt !== undefined), 30_000, 50);
    let warm = true;
    void (async () => {
      while (warm) {
        void this.load.publishOne([this.sharedId], 'warm-up', this.opts.bodyBytes);
        await sleep(300);
      }
    })();
    const ok = await subscribed;
    warm = false;
    if (!ok) {
      const missing = this.clients.filter((c) => c.rec.subscribedAt === undefined).map((c) => c.rec.id);
      throw new Error(`clients never got a first message: ${missing.join(', ')}`);
    }
    log(`${this.clients.length} clients subscribed in ${Date.now() - t0} ms`);
  }

  private sharedId = '';

  private makeClients(): void {
    const shared = newShared();
    this.sharedId = shared.id;
    const g1: GatewayRef = { name: 'gateway-1', wsBase: () => this.gateway1.wsBase, base: () => this.gateway1.base };
    const g2: GatewayRef = { name: 'gateway-2', wsBase: () => this.gateway2.wsBase, base: () => this.gateway2.base };
    const both = [g1, g2];
    const spec = (id: string, gateways: GatewayRef[]) => {
      const user = newUser();
      return { id, channelId: `${user.token}/${shared.token}`, channels: [user.priv, shared.id], gateways };
    };
    const o = this.opts;
    for (let i = 0; i < o.wsText; i++) this.ordinary.push(new WsSubscriber({ ...spec(`ws-text-${i + 1}`, both), format: 'text' }, this.rng));
    for (let i = 0; i < o.wsBinary; i++) this.ordinary.push(new WsSubscriber({ ...spec(`ws-bin-${i + 1}`, both), format: 'binary' }, this.rng));
    for (let i = 0; i < o.longPollText; i++) this.ordinary.push(new LongPollSubscriber({ ...spec(`lp-text-${i + 1}`, both), format: 'text' }, this.rng));
    for (let i = 0; i < o.longPollBinary; i++) this.ordinary.push(new LongPollSubscriber({ ...spec(`lp-bin-${i + 1}`, both), format: 'binary' }, this.rng));
    const outbox = spec('ws-outbox-sleeper', [g2]);
    const aged = spec('ws-aged-sleeper', both);
    this.special = {
      outboxSleeper: new WsSubscriber({ ...outbox, format: 'text' }, this.rng),
      outboxSleeperChannel: outbox.channels[0]!,
      agedSleeper: new WsSubscriber({ ...aged, format: 'text' }, this.rng),
      agedSleeperChannel: aged.channels[0]!,
      fillerChannel: newId(),
    };
    this.clients = [...this.ordinary, this.special.outboxSleeper, this.special.agedSleeper];
  }

  nodeName(url: string): string {
    return this.cluster.nodes.find((n) => n.url === url)?.name ?? url;
  }

  /** The node a process is connected to now (monitoring), else the one it was started with. */
  async nodeOf(p: JetpullProcess): Promise<NatsNode> {
    return (await this.cluster.nodeOf(p.name)) ?? this.cluster.nodes.find((n) => n.url === p.nats)!;
  }

  async leaderNode(): Promise<NatsNode> {
    return this.cluster.node(await this.admin.leader());
  }

  /** Undelivered (client, publish) pairs now: what the checker would call lost if the run ended here. */
  undelivered(): Array<{ client: Subscriber; n: number }> {
    const out: Array<{ client: Subscriber; n: number }> = [];
    for (const c of this.clients) {
      const got = new Set<number>();
      for (const d of c.rec.deliveries) if (d.visible && d.n !== undefined) got.add(d.n);
      for (const p of this.load.history) if (shouldReceive(c.rec, p) && !got.has(p.n)) out.push({ client: c, n: p.n });
    }
    return out;
  }

  /**
   * Stops the load and waits until every acknowledged message reached every client
   * that should have it, or nothing new arrived for `idleMs`, or `timeoutMs` passed.
   */
  async quiesce(timeoutMs: number, idleMs = 6_000): Promise<{ complete: boolean; missing: number; waitedMs: number }> {
    const started = Date.now();
    this.load.pause();
    await Promise.race([this.load.settle(), sleep(timeoutMs)]);
    let lastCount = -1;
    let lastChange = Date.now();
    for (;;) {
      const missing = this.undelivered().length;
      const total = this.clients.reduce((s, c) => s + c.rec.deliveries.length, 0);
      if (total !== lastCount) {
        lastCount = total;
        lastChange = Date.now();
      }
      const waitedMs = Date.now() - started;
      if (missing === 0) return { complete: true, missing, waitedMs };
      if (Date.now() - lastChange >= idleMs || waitedMs >= timeoutMs) return { complete: false, missing, waitedMs };
      await sleep(250);
    }
  }

  /** Reads from the stream where the messages not delivered so far are stored (before a recreation wipes them). */
  async auditUndelivered(): Promise<void> {
    const keys = new Set<string>();
    for (const { client } of this.undelivered()) for (const ch of client.rec.channels) keys.add(ch);
    for (const ch of keys) {
      try {
        const copies = await this.admin.channelCopies(`priv.${ch}`);
        const m = this.stored.get(ch) ?? new Map<number, number[]>();
        for (const c of copies) {
          if (c.n === undefined) continue;
          const list = m.get(c.n) ?? [];
          if (!list.includes(c.seq)) list.push(c.seq);
          m.set(c.n, list);
        }
        this.stored.set(ch, m);
      } catch (err) {
        this.opts.log(`stream audit of ${ch} failed: ${(err as Error).message}`);
      }
    }
  }

  /** Stops everything this rig started; safe to call after a failed start. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    this.load?.pause();
    await Promise.allSettled(this.processes.map((p) => p.stop(5_000)));
    await this.admin?.close();
    await this.cluster?.stop();
    if (this.dir) removeTempDir(this.dir);
  }
}
