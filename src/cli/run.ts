import { VERSION } from '../version.ts';
import type { Command } from './command.ts';
import { CliError, ExitCode, type ExitCodeValue } from './errors.ts';
import type { CliIo } from './io.ts';

/** Each command is loaded when it runs: a client command does not load the server. */
const COMMANDS: ReadonlyArray<{ name: string; summary: string; load: () => Promise<Command> }> = [
  { name: 'serve', summary: 'run the push server (what jetpull does without a command)', load: async () => (await import('./serve.ts')).serve },
  { name: 'sign', summary: 'sign private, shared and public channel ids with the security key', load: async () => (await import('./sign.ts')).sign },
  { name: 'publish', summary: 'publish a message over HTTP or NATS, retried until stored once', load: async () => (await import('./publish.ts')).publish },
  { name: 'stat', summary: 'show the running processes and whether channels are online', load: async () => (await import('./stat.ts')).stat },
  { name: 'config', summary: 'print what a portal or a custom client needs to use this jetpull', load: async () => (await import('./config.ts')).config },
  { name: 'check', summary: 'validate a jetpull or Push server 2.0 config file', load: async () => (await import('./check.ts')).check },
];

const help = `Usage: jetpull [command] [options]

A push server for the Bitrix Push & Pull protocol on NATS JetStream, and the tools
around it. Without a command (or with only --config <file>) it runs the server, as
jetpull serve does.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`).join('\n')}

jetpull <command> --help describes a command. Every server setting is an environment
variable (deploy/jetpull.env.example) or a key of the --config file; the client
commands read the same configuration to find the server.

Exit codes:
  0  done
  1  a runtime failure a retry may fix: server or NATS unreachable, 503, timeout, start-up failed
  2  a usage error or an invalid configuration: fix the command line or the file
  3  the server refused the request: the same request will be refused again

jetpull ${VERSION}`;

/** Runs one command line; resolves with the exit code, or undefined while the server runs. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCodeValue | undefined> {
  const [first, ...rest] = argv;
  try {
    if (first === '--help' || first === '-h' || first === 'help') {
      const entry = first === 'help' && rest[0] !== undefined ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
      io.out(entry === undefined ? help : (await entry.load()).help);
      return ExitCode.Ok;
    }
    if (first === '--version') {
      io.out(VERSION);
      return ExitCode.Ok;
    }
    // No command: the server, reading its arguments exactly as it always has (only --config).
    if (first === undefined || first.startsWith('-')) {
      await (await import('./server.ts')).runServer({ argv, env: io.env });
      return undefined;
    }
    const entry = COMMANDS.find((c) => c.name === first);
    if (entry === undefined) throw new CliError(ExitCode.Usage, `unknown command "${first}"`, `the commands are ${COMMANDS.map((c) => c.name).join(', ')}; see jetpull --help`);
    return await (await entry.load()).run(rest, io);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    const name = first !== undefined && COMMANDS.some((c) => c.name === first) ? `jetpull ${first === 'config' && rest[0] ? `config ${rest[0]}` : first}` : 'jetpull';
    io.err(`${name}: ${err.message}${err.todo ? `\n  ${err.todo}` : ''}`);
    return err.exitCode;
  }
}
