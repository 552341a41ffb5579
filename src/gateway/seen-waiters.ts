/** How long a replay waits for live delivery to reach its horizon before handing over anyway. */
const SEEN_WAIT_MS = 2_000;
/**
 * While live delivery is held for a catch-up (a leader election, a reconnect to NATS),
 * a replay waits for it this long at most: handed over before the catch-up ends, its
 * client would get the catch-up's older messages after the replay's newer ones.
 */
const SEEN_WAIT_HELD_MS = 60_000;

interface Waiter {
  readonly seq: number;
  readonly resolve: (seen: boolean) => void;
}

/**
 * Replays waiting for the hub's live delivery to reach a sequence (their horizon).
 * Each is answered true once `wake` passes its sequence, or false after SEEN_WAIT_MS;
 * while `isHeld` says live delivery is held the wait goes on, SEEN_WAIT_HELD_MS at most.
 */
export class SeenWaiters {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly isHeld: () => boolean) {}

  wait(seq: number): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter: Waiter = { seq, resolve };
      this.waiters.add(waiter);
      const heldUntil = Date.now() + SEEN_WAIT_HELD_MS;
      const expire = (): void => {
        if (!this.waiters.has(waiter)) return;
        if (this.isHeld() && Date.now() < heldUntil) {
          setTimeout(expire, SEEN_WAIT_MS).unref();
          return;
        }
        this.waiters.delete(waiter);
        resolve(false);
      };
      setTimeout(expire, SEEN_WAIT_MS).unref();
    });
  }

  /** Live delivery has handed out everything up to `upTo`. */
  wake(upTo: number): void {
    if (this.waiters.size === 0) return;
    for (const w of this.waiters) {
      if (w.seq > upTo) continue;
      this.waiters.delete(w);
      w.resolve(true);
    }
  }

  /** The hub closes: nobody waits any more. */
  releaseAll(): void {
    for (const w of this.waiters) w.resolve(true);
    this.waiters.clear();
  }
}
