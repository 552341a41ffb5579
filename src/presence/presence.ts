import { hostname } from 'node:os';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log/logger.ts';
import type { KvStore } from '../nats/kv-store.ts';
import { channelKey, userChannelId } from '../wire/channel-id.ts';

/**
 * Deployment-wide online status, kept in the PUSH_PRESENCE bucket (one key per
 * channel key, see streams/presence.ts). Gateways `touch` the channels of a
 * connection when it opens and on each keep-alive; any process answers `online`
 * with the same truth. A process writes a key at most once per `refreshMs`, so
 * long polls re-polling every few seconds do not turn into a write each.
 *
 * Every channel of a connection is marked, not only its first token: a channel is
 * online while it has a subscription (spec §6 and case 31; Push server 2.0's Redis
 * mode marked the first token only, a side effect of its key layout). The shared
 * channel costs one write per refresh per process, whatever the connection count.
 *
 * Writes wait in a queue (one entry per channel) and at most `maxInFlight` are
 * outstanding: the pongs of a ping round come back together and must not become
 * tens of thousands of KV writes at once.
 */
export class Presence {
  private readonly lastWrite = new Map<string, number>();
  private readonly queued = new Set<string>();
  private inFlight = 0;
  private failures = 0;

  constructor(
    private readonly kv: KvStore,
    private readonly ttlMs: number,
    private readonly refreshMs: number,
    private readonly value: string,
    private readonly log: Logger,
    private readonly maxInFlight = 64,
  ) {}

  /**
   * Online means "seen within storage.onlineTtlSec + onlineDeltaSec"; a process
   * rewrites a key at most every quarter of onlineTtlSec. The value names the
   * process that saw the channel last.
   */
  static fromConfig(kv: KvStore, storage: Config['storage'], processUniqueId: string, log: Logger): Presence {
    return new Presence(
      kv,
      (storage.onlineTtlSec + storage.onlineDeltaSec) * 1000,
      Math.max(1_000, Math.floor(storage.onlineTtlSec * 250)),
      `${hostname()}/${processUniqueId}`,
      log,
      storage.presenceWritesInFlight,
    );
  }

  /** Writes waiting for a slot. */
  get backlog(): number {
    return this.queued.size;
  }

  /** Marks channels online now (fire and forget: presence never holds up a connection). */
  touch(keys: readonly string[], now = Date.now()): void {
    for (const key of keys) {
      const last = this.lastWrite.get(key);
      if (last !== undefined && now - last < this.refreshMs) continue;
      this.lastWrite.set(key, now);
      this.queued.add(key);
    }
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queued.size > 0) {
      const key = this.queued.values().next().value as string;
      this.queued.delete(key);
      this.inFlight++;
      this.kv.put(key, this.value).then(
        () => {
          this.failures = 0;
          this.written();
        },
        (err: unknown) => {
          this.lastWrite.delete(key);
          // One line per burst of failures, not one per connection.
          if (this.failures++ === 0) this.log.warn({ err, channel: key }, 'presence write failed');
          this.written();
        },
      );
    }
  }

  private written(): void {
    this.inFlight--;
    this.pump();
  }

  /** How long a channel counts as online after it was last seen. */
  get onlineTtlMs(): number {
    return this.ttlMs;
  }

  /** Whether each channel was seen within the TTL, in the order asked; one pipelined round of reads. */
  async online(keys: readonly string[]): Promise<boolean[]> {
    return (await this.lastSeen(keys)).map((s) => s?.online === true);
  }

  /** When each channel was last seen and whether that is within the TTL; undefined for one with no record left. */
  async lastSeen(keys: readonly string[]): Promise<Array<{ atMs: number; online: boolean } | undefined>> {
    const now = Date.now();
    const entries = await Promise.all(keys.map((key) => this.kv.get(key)));
    return entries.map((e) => (e === null ? undefined : { atMs: e.createdMs, online: now - e.createdMs < this.ttlMs }));
  }

  /**
   * Protocol 5's last seen of a portal's users (their channels, userChannelId):
   * `{"<user id>": 0}` while online, else the seconds since; users without a record left
   * (never seen, or longer ago than the bucket keeps entries) are left out.
   */
  async usersLastSeen(hostId: string, userIds: readonly string[], now = Date.now()): Promise<Record<string, number>> {
    const seen = await this.lastSeen(userIds.map((u) => channelKey({ id: userChannelId(hostId, u), isPrivate: true })));
    const out: Record<string, number> = {};
    userIds.forEach((u, i) => {
      const s = seen[i];
      if (s !== undefined) out[u] = s.online ? 0 : Math.max(0, Math.floor((now - s.atMs) / 1000));
    });
    return out;
  }

  /** Forgets write times older than the refresh interval (keeps the map small). */
  sweep(now = Date.now()): void {
    for (const [key, at] of this.lastWrite) if (now - at >= this.refreshMs) this.lastWrite.delete(key);
  }
}
