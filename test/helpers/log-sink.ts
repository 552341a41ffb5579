import { Writable } from 'node:stream';

/** A pino destination that keeps every line in memory, for assertions on logs. */
export class LogSink extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.lines.push({ unparsed: line });
      }
    }
    done();
  }

  find(msg: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === msg);
  }

  /** Everything written, as one string (to check that a secret never appears). */
  text(): string {
    return this.raw.join('\n');
  }
}
