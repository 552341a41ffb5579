/** Something that runs once at the end of the event-loop turn it asked in. */
export interface TurnEndListener {
  turnEnded(): void;
}

/**
 * The process's event-loop turns, as coalescing sees them: a turn ends when the
 * I/O callbacks of one loop iteration have run (one setImmediate for every
 * connection, armed only while something happens). Messages that reach a
 * connection within one turn (one NATS read, typically) can go out as one frame.
 */
export class TurnQueue {
  private turn = 1;
  private armed = false;
  private waiting: TurnEndListener[] = [];

  /** The current turn's number; it changes once the turn ends. */
  current(): number {
    this.arm();
    return this.turn;
  }

  /** Calls `listener.turnEnded()` once, at the end of the current turn. */
  defer(listener: TurnEndListener): void {
    this.waiting.push(listener);
    this.arm();
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.end);
  }

  private readonly end = (): void => {
    this.armed = false;
    this.turn++;
    const list = this.waiting;
    this.waiting = [];
    for (const l of list) l.turnEnded();
  };
}

/** One for the process: every connection shares the same turns. */
export const turns = new TurnQueue();
