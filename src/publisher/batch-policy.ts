import type { Logger } from '../log/logger.ts';
import type { BatchRefusal } from '../nats/atomic-batch.ts';

/**
 * Which publishes to several receivers are written as one atomic batch: those within
 * publisher.atomicBatchMaxReceivers, when the stream is replicated and allows batches
 * (nats-server 2.12+, `allow_atomic` echoed back). Not on a single-replica stream:
 * there the server stages each batch in a file store of its own, and publishes of 10
 * copies went through at 43/s as batches against 797/s one copy at a time (2.15.1,
 * `npm run bench -- atomic-batch`; on three replicas 1,157/s against 997/s).
 *
 * Larger publishes are written one copy at a time: splitting them into several
 * batches would lose all-or-nothing anyway, and the batches after the first would
 * have to carry the first copy's sequence as the copies written one at a time do.
 * What the stream refuses later narrows the choice, logged once: a stream that no
 * longer allows batches (an older process rewrote its settings) stops them, a server
 * limit below the setting lowers it.
 */
export class BatchPolicy {
  private maxReceivers: number;
  private limitLogged = false;

  constructor(
    streamAllows: boolean,
    maxReceivers: number,
    private readonly log: Logger,
  ) {
    this.maxReceivers = streamAllows ? maxReceivers : 0;
    log.info({ atomicBatch: this.maxReceivers > 1, maxReceivers: this.maxReceivers }, 'multi-receiver publish path');
  }

  /** A publish to `receivers` (more than one) goes as one batch. */
  fits(receivers: number): boolean {
    return receivers <= this.maxReceivers;
  }

  /** The stream refused a batch of `size` as a whole (nothing stored); the publish is written per copy. */
  refused(refusal: BatchRefusal, size: number, detail: string): void {
    if (refusal === 'disabled' && this.maxReceivers > 0) {
      this.maxReceivers = 0;
      this.log.warn({ detail }, 'the stream no longer allows atomic batches; publishes are written one copy at a time');
    } else if (refusal === 'too-large' && size - 1 < this.maxReceivers) {
      // Lowered step by step (the server's limit is not announced), logged the first time.
      this.maxReceivers = size - 1;
      if (!this.limitLogged) this.log.warn({ detail, maxReceivers: this.maxReceivers }, 'the server limits atomic batches below publisher.atomicBatchMaxReceivers; the limit is lowered');
      this.limitLogged = true;
    } else if (refusal === 'duplicate') {
      // A retry of a stored batch (or a reused idempotency key): per copy reads the stored copies back.
      this.log.debug({ detail, size }, 'batch already stored, reading its copies back');
    }
  }
}
