import type { Logger } from '../log/logger.ts';

/** Memory has to fall this far below the watermark before connections are taken again. */
export const MEMORY_RESUME_RATIO = 0.9;
/** How often memory is read: often enough to stop a herd, rarely enough to cost nothing. */
const SAMPLE_INTERVAL_MS = 1_000;

/**
 * The memory watermark (gateway.memoryWatermarkBytes): while the process's resident
 * memory is above it, readiness fails and new connections are refused with 503, so
 * that the connections it holds keep their memory instead of the process being
 * killed with all of them. Hysteresis: it is high from the first sample over the
 * watermark until one below MEMORY_RESUME_RATIO of it, so a process hovering at the
 * line does not flap; each crossing is logged once.
 *
 * Resident memory (RSS), not the JavaScript heap: socket buffers and message frames
 * live outside the heap, and RSS is what a container's memory limit kills for.
 */
export class MemoryWatermark {
  private high = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private limitBytes: number,
    private readonly log: Logger,
    private readonly rss: () => number = () => process.memoryUsage.rss(),
  ) {}

  get isHigh(): boolean {
    return this.high;
  }

  get watermarkBytes(): number {
    return this.limitBytes;
  }

  start(): void {
    this.check();
    this.timer ??= setInterval(() => this.check(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Moves the watermark (at run time) and reads memory against it at once. */
  setWatermark(bytes: number): void {
    this.limitBytes = bytes;
    this.check();
  }

  check(): void {
    const rssBytes = this.rss();
    if (!this.high && rssBytes > this.limitBytes) {
      this.high = true;
      this.log.warn({ rssBytes, watermarkBytes: this.limitBytes }, 'memory above the watermark, refusing new connections');
    } else if (this.high && rssBytes < this.limitBytes * MEMORY_RESUME_RATIO) {
      this.high = false;
      this.log.info({ rssBytes, watermarkBytes: this.limitBytes }, 'memory back below the watermark, taking new connections');
    }
  }
}
