import type { Command } from './command.ts';
import { configClient } from './config-client.ts';
import { configPortal } from './config-portal.ts';
import { UsageError } from './errors.ts';

const SUBCOMMANDS: Record<string, Command> = { portal: configPortal, client: configClient };

const help = `Usage: jetpull config <portal|client> ...

  jetpull config portal          the pull module options a portal needs
  jetpull config client <user>   a pull.application.config.get-shaped config for a custom client

Both read jetpull's own configuration (the environment, or --config <file>).
jetpull config <portal|client> --help tells more.`;

export const config: Command = {
  name: 'config',
  help,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      if (sub === undefined) {
        io.err(help);
        return 2;
      }
      io.out(help);
      return 0;
    }
    const command = SUBCOMMANDS[sub];
    if (command === undefined) throw new UsageError(`unknown config command "${sub}"`, 'use jetpull config portal or jetpull config client <user>');
    return command.run(rest, io);
  },
};
