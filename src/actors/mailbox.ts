/**
 * A bounded FIFO with one consumer. `push` never blocks: it returns false when the
 * mailbox is full (overflow policy "reject"), and the caller decides what that means.
 * The consumer awaits `next()`, which resolves as soon as something is queued.
 */
export class Mailbox<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: ((value: T | undefined) => void) | null = null;
  private closed = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`mailbox capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): boolean {
    if (this.closed || this.size >= this.capacity) return false;
    if (this.waiter !== null) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
      return true;
    }
    this.items.push(item);
    return true;
  }

  /** The next item, or undefined once the mailbox is closed and empty. */
  next(): Promise<T | undefined> | T | undefined {
    if (this.size > 0) return this.shift();
    if (this.closed) return undefined;
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Stops accepting; queued items are still handed out. */
  close(): void {
    this.closed = true;
    if (this.waiter !== null && this.size === 0) {
      const w = this.waiter;
      this.waiter = null;
      w(undefined);
    }
  }

  /** Removes and returns everything queued (used to fail pending asks on stop). */
  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }

  private shift(): T {
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
