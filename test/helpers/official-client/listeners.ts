export interface ShimEvent {
  type: string;
  target: unknown;
  [key: string]: unknown;
}

export type Listener = (ev: ShimEvent) => void;

/**
 * `addEventListener` bookkeeping for the WebSocket and XMLHttpRequest shims. A
 * listener that throws is handed to `onThrow` and the others still run, as in a
 * browser: thrown from a `ws` or node:http callback it would become an
 * uncaughtException and wedge the `ws` receiver (official-client.md §9.2).
 */
export class Listeners {
  private readonly byType = new Map<string, Set<Listener>>();

  constructor(private readonly onThrow: (err: unknown) => void) {}

  add(type: string, fn: Listener): void {
    let set = this.byType.get(type);
    if (!set) this.byType.set(type, (set = new Set()));
    set.add(fn);
  }

  remove(type: string, fn: Listener): void {
    this.byType.get(type)?.delete(fn);
  }

  dispatch(ev: ShimEvent): void {
    for (const fn of [...(this.byType.get(ev.type) ?? [])]) {
      try {
        fn.call(ev.target, ev);
      } catch (err) {
        this.onThrow(err);
      }
    }
  }
}
