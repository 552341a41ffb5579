import type { Logger } from '../log/logger.ts';
import type { Publisher } from '../publisher/publish-command.ts';
import { channelKey, userChannelId } from '../wire/channel-id.ts';
import type { Presence } from './presence.ts';

/** One watching connection: its portal and user (a token's), by which it is told. */
export interface StatusWatcher {
  readonly hostId: string;
  readonly userId: string;
}

interface Watched {
  readonly hostId: string;
  readonly userId: string;
  /** Watching connections, and the user each of them is. */
  readonly by: Map<object, string>;
  /** What the last poll saw; undefined before the first. */
  state: { online: boolean; atMs: number } | undefined;
}

export interface StatusWatchOptions {
  /** How often the watched users' presence is read. */
  pollMs: number;
  /** Watches one connection may hold. */
  maxPerConnection: number;
}

/**
 * Protocol 5's user status pushes (`subscribeStatusChange`): a connection of a token's
 * user watches other users of its portal, and when one of them comes online or goes
 * offline it gets `{module_id:"online", command:"userStatusChange", params:{user_id,
 * online}}` as a message. The change is read from presence every `pollMs` (a user is
 * online while seen within the presence TTL, so going offline shows once that has
 * passed) and stored into the watcher's user channel like any message, so it has a mid
 * and the client's resume point stays right. Every gateway polls for its own watchers;
 * each change is stored under an idempotency key made of the watcher, the watched user
 * and the presence entry that changed, so gateways that see the same change store it
 * once, and the message's time comes from that entry, so its body is the same too.
 */
export class StatusWatch {
  private readonly watched = new Map<string, Watched>();
  private readonly byConnection = new Map<object, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** Set while polls fail: one log line per outage, not one per poll. */
  private failing = false;

  constructor(
    private readonly presence: Presence,
    private readonly publisher: Publisher,
    private readonly opts: StatusWatchOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.opts.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** False when the connection already holds its most watches. */
  watch(connection: object, watcher: StatusWatcher, userId: string): boolean {
    const key = `${watcher.hostId}:${userId}`;
    const mine = this.byConnection.get(connection) ?? new Set<string>();
    if (!mine.has(key) && mine.size >= this.opts.maxPerConnection) return false;
    mine.add(key);
    this.byConnection.set(connection, mine);
    let w = this.watched.get(key);
    if (w === undefined) {
      w = { hostId: watcher.hostId, userId, by: new Map(), state: undefined };
      this.watched.set(key, w);
    }
    w.by.set(connection, watcher.userId);
    return true;
  }

  unwatch(connection: object, hostId: string, userId: string): void {
    const key = `${hostId}:${userId}`;
    this.byConnection.get(connection)?.delete(key);
    this.drop(connection, key);
  }

  /** The connection closed: all its watches end. */
  forget(connection: object): void {
    const mine = this.byConnection.get(connection);
    if (mine === undefined) return;
    this.byConnection.delete(connection);
    for (const key of mine) this.drop(connection, key);
  }

  get size(): number {
    return this.watched.size;
  }

  /** @internal one round: read every watched user's presence, tell the watchers of those that changed. */
  async poll(now = Date.now()): Promise<void> {
    if (this.polling || this.watched.size === 0) return;
    this.polling = true;
    try {
      const list = [...this.watched.values()];
      const seen = await this.presence.lastSeen(list.map((w) => channelKey({ id: userChannelId(w.hostId, w.userId), isPrivate: true })));
      const writes: Array<Promise<void>> = [];
      list.forEach((w, i) => {
        const s = seen[i];
        const before = w.state;
        // A record the bucket already let go of was last written when the previous poll saw it.
        const state = { online: s?.online === true, atMs: s?.atMs ?? before?.atMs ?? 0 };
        w.state = state;
        if (before === undefined || before.online === state.online) return;
        for (const watcherUser of new Set(w.by.values())) writes.push(this.tell(w, watcherUser, state));
      });
      await Promise.all(writes);
      if (this.failing) this.log.info({ watched: this.watched.size }, 'user status polls recovered');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.log.warn({ err }, 'user status poll failed');
      this.failing = true;
    } finally {
      this.polling = false;
    }
  }

  private async tell(w: Watched, watcherUser: string, state: { online: boolean; atMs: number }): Promise<void> {
    // Online since the entry was written; offline once it was older than the TTL: both known to every gateway alike.
    const atSec = Math.floor((state.online ? state.atMs : state.atMs + this.presence.onlineTtlMs) / 1000);
    const body = JSON.stringify({
      module_id: 'online',
      command: 'userStatusChange',
      params: { user_id: Number(w.userId), online: state.online },
      extra: { server_time_unix: atSec },
    });
    try {
      await this.publisher.publish({
        receivers: [{ id: userChannelId(w.hostId, watcherUser), isPrivate: true }],
        body: Buffer.from(body, 'utf8'),
        expirySec: 0,
        idempotencyKey: `status.${w.hostId}.${w.userId}.${state.online ? 'on' : 'off'}.${state.atMs}.${watcherUser}`,
        type: 'online_userStatusChange',
      });
    } catch (err) {
      this.log.warn({ err, userId: w.userId }, 'user status change not stored');
    }
  }

  private drop(connection: object, key: string): void {
    const w = this.watched.get(key);
    if (w === undefined) return;
    w.by.delete(connection);
    if (w.by.size === 0) this.watched.delete(key);
  }
}
