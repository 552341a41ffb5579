import { ConfigSchema } from '../config/schema.ts';
import { parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { UsageError } from './errors.ts';
import { runServer } from './server.ts';

const ROLES = ConfigSchema.shape.role.unwrap().options;

const help = `Usage: jetpull serve [--role ${ROLES.join('|')}] [--config <file>]

Runs the push server until SIGTERM or SIGINT, then drains and exits 0. jetpull with
no command, npm start and the container image do the same.

Options:
  --role <role>    gateway: client connections; publisher: the backend's routes and the
                   NATS publish subject; all: both. Wins over PUSH_ROLE and the file.
  --config <file>  a Push server 2.0 config.json (BitrixVM's files work as they are;
                   jetpull's own settings go under "jetpull"). The environment wins
                   over the file. jetpull check <file> validates one.
  -h, --help       this help

Every setting: deploy/jetpull.env.example.
Exit codes: 2 invalid configuration or arguments, 1 start-up failed.`;

export const serve: Command = {
  name: 'serve',
  help,
  async run(argv, io) {
    const { values } = parseCommand('serve', argv, { role: { type: 'string' }, config: { type: 'string' } }, { min: 0, max: 0, name: '' });
    if (values.help) {
      io.out(help);
      return 0;
    }
    const role = values.role;
    if (role !== undefined && !(ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role takes ${ROLES.join(', ')}, got "${role}"`, 'see jetpull serve --help');
    }
    await runServer({
      argv: values.config === undefined ? [] : ['--config', values.config],
      env: io.env,
      ...(role === undefined ? {} : { overrides: { role } }),
    });
    return undefined;
  },
};
