/** Something that runs once when the callback or the event-loop turn it asked in ends. */
export interface EndListener {
  ended(at: 'callback' | 'turn'): void;
}

/** Listeners called once, together, from one scheduled callback. */
class EndQueue {
  private armed = false;
  private waiting: EndListener[] = [];

  constructor(
    private readonly at: 'callback' | 'turn',
    private readonly schedule: (fn: () => void) => void,
  ) {}

  defer(listener: EndListener): void {
    this.waiting.push(listener);
    this.arm();
  }

  protected arm(): void {
    if (this.armed) return;
    this.armed = true;
    this.schedule(this.end);
  }

  protected onEnd(): void {}

  private readonly end = (): void => {
    this.armed = false;
    this.onEnd();
    const list = this.waiting;
    this.waiting = [];
    for (const l of list) l.ended(this.at);
  };
}

/**
 * The process's event-loop turns, as coalescing sees them: a turn ends when the I/O
 * callbacks of one loop iteration have run (one setImmediate for every connection,
 * armed only while something happens).
 */
class TurnQueue extends EndQueue {
  private turn = 1;

  constructor() {
    super('turn', setImmediate);
  }

  /** The current turn's number; it changes once the turn ends. */
  current(): number {
    this.arm();
    return this.turn;
  }

  protected override onEnd(): void {
    this.turn++;
  }
}

/** One for the process: every connection shares the same turns. */
export const turns = new TurnQueue();

/**
 * The end of the callback that is running (process.nextTick: before the event loop
 * takes the next I/O event): everything one NATS read delivers is in hand by then.
 */
export const callbackEnd = new EndQueue('callback', (fn) => process.nextTick(fn));
