import type { ExitCodeValue } from './errors.ts';
import type { CliIo } from './io.ts';

/** One `jetpull <name>` command. */
export interface Command {
  readonly name: string;
  /** What `jetpull <name> --help` prints. */
  readonly help: string;
  /** The exit code, or undefined for a command that keeps running (serve). */
  run(argv: readonly string[], io: CliIo): Promise<ExitCodeValue | undefined>;
}
