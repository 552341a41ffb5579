/**
 * Exit codes of every command (README "CLI", `jetpull --help`):
 * 0 done; 1 a runtime failure a retry may fix (server or NATS unreachable, 503, timeout,
 * start-up failed); 2 a usage error or an invalid configuration (fix the command line
 * or the file); 3 the server refused the request (retrying the same request cannot help).
 */
export const ExitCode = { Ok: 0, Failure: 1, Usage: 2, Refused: 3 } as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A command's failure, printed as `jetpull <command>: <message>` and then what to do. */
export class CliError extends Error {
  constructor(readonly exitCode: ExitCodeValue, message: string, readonly todo?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string, todo?: string) {
    super(ExitCode.Usage, message, todo);
    this.name = 'UsageError';
  }
}
