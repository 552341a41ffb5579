import type { Logger } from '../log/logger.ts';
import { Mailbox } from './mailbox.ts';

export type ActorState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * An actor owns private state and handles one message at a time from a bounded
 * mailbox. Other code only talks to it through `tell`. `handle` may return a
 * promise: the next message waits for it, which is how an actor pushes back
 * (the mailbox fills and `tell` starts returning false).
 *
 * `start` and `stop` are idempotent; `stop` returns the same promise every time.
 * An exception escaping `handle` is a crash: it is logged once and `onCrash` decides.
 */
export abstract class Actor<M> {
  protected readonly mailbox: Mailbox<M>;
  private stateValue: ActorState = 'new';
  private loopDone: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  protected constructor(
    protected readonly log: Logger,
    mailboxCapacity: number,
  ) {
    this.mailbox = new Mailbox<M>(mailboxCapacity);
  }

  get state(): ActorState {
    return this.stateValue;
  }

  /** Queues a message; false when the mailbox is full or the actor is not running. */
  tell(msg: M): boolean {
    if (this.stateValue !== 'running') return false;
    return this.mailbox.push(msg);
  }

  async start(): Promise<void> {
    if (this.stateValue !== 'new') return;
    this.stateValue = 'starting';
    await this.onStart();
    this.stateValue = 'running';
    this.loopDone = this.loop();
    this.log.debug('actor started');
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  protected abstract handle(msg: M): void | Promise<void>;
  protected async onStart(): Promise<void> {}
  /** Runs after the mailbox is closed and every queued message was handled. */
  protected async onStop(): Promise<void> {}
  protected onCrash(err: unknown, msg: M): void {
    this.log.error({ err, msgType: (msg as { type?: string }).type }, 'actor crashed handling a message');
  }

  private async loop(): Promise<void> {
    for (;;) {
      const next = this.mailbox.next();
      const msg = next instanceof Promise ? await next : next;
      if (msg === undefined) return;
      try {
        const r = this.handle(msg);
        if (r instanceof Promise) await r;
      } catch (err) {
        this.onCrash(err, msg);
      }
    }
  }

  private async doStop(): Promise<void> {
    if (this.stateValue === 'new') {
      this.stateValue = 'stopped';
      return;
    }
    this.stateValue = 'stopping';
    this.mailbox.close();
    await this.loopDone;
    await this.onStop();
    this.stateValue = 'stopped';
    this.log.debug('actor stopped');
  }
}
