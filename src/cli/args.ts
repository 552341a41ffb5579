import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.ts';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>['values'];

/**
 * node:util parseArgs with the command's name in every error and `--help` always
 * accepted; unknown options and a wrong number of arguments are usage errors.
 */
export function parseCommand<O extends Options>(
  command: string,
  argv: readonly string[],
  options: O,
  positionals: { min: number; max: number; name: string },
): { values: Values<O> & { help?: boolean }; args: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''), `see jetpull ${command} --help`);
  }
  const { values, positionals: args } = parsed;
  if (values.help !== true) {
    if (args.length < positionals.min) throw new UsageError(`${positionals.name} is missing`, `see jetpull ${command} --help`);
    if (args.length > positionals.max) throw new UsageError(`unexpected argument "${args[positionals.max]}"`, `see jetpull ${command} --help`);
  }
  return { values: values as Values<O> & { help?: boolean }, args };
}

/** A whole number of at least `min` from an option's text. */
export function intOption(command: string, name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} takes a whole number of at least ${min}, got "${text}"`, `see jetpull ${command} --help`);
  return n;
}
