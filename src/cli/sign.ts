import { createSigner } from '../wire/channel-id.ts';
import { parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { commandConfig } from './context.ts';
import { CliError, ExitCode, UsageError } from './errors.ts';

const help = `Usage: jetpull sign <channel>... [--public] [--json] [--config <file>]

Signs channel ids with the configured security key (PUSH_SECURITY__KEY, or
security.key of --config), as the portal's pull module does (spec §2.3):

  <id>           -> <id>.<HMAC(id)>               a shared channel, or a private id (versions 1-3)
  <priv>:<pub>   -> <priv>:<pub>.<HMAC(priv:pub)> the private channel of a version 4 client
  --public <pub> -> <pub>.<HMAC("public:"+pub)>    the address other clients publish to

Ids are 32 lowercase hex characters. One line per channel; --json adds every form.
JWTs for version 5 (JSON-RPC) clients are not made: jetpull serves versions 1-4.

Options:
  --public         the arguments are public ids; print their public addresses
  --json           print [{"channel", "signed", "publicAddress"?}] as JSON
  --config <file>  the server's config file (for security.key and security.algo)
  -h, --help       this help

Exit codes: 0 signed; 2 no key configured, or an id that is not 32 lowercase hex.`;

const ID = /^[a-f0-9]{32}$/;

export const sign: Command = {
  name: 'sign',
  help,
  async run(argv, io) {
    const { values, args } = parseCommand(
      'sign',
      argv,
      { public: { type: 'boolean' }, json: { type: 'boolean' }, config: { type: 'string' } },
      { min: 1, max: Infinity, name: 'a channel id' },
    );
    if (values.help) {
      io.out(help);
      return 0;
    }
    const config = commandConfig(io, values.config);
    if (config.security.key === undefined) {
      throw new CliError(ExitCode.Usage, 'no security key is configured', 'set PUSH_SECURITY__KEY (the portal\'s signature_key) or pass --config <file> with security.key');
    }
    const signer = createSigner(config.security.key, config.security.algo);
    const hmac = (message: string): string => signer.sign(message)!;
    const out = args.map((channel) => {
      const ids = values.public ? [channel] : channel.split(':');
      if (ids.length > 2 || !ids.every((id) => ID.test(id)) || (values.public && ids.length !== 1)) {
        const lower = ids.every((id) => ID.test(id.toLowerCase()));
        throw new UsageError(
          `"${channel}" is not ${values.public ? 'a public id' : 'an id or <priv>:<pub>'}`,
          lower ? 'ids are lowercase: pass it in lower case' : 'an id is 32 lowercase hex characters (the portal\'s channel ids are md5 hashes)',
        );
      }
      const pub = values.public ? ids[0] : ids[1];
      const signed = values.public ? `${pub}.${hmac(`public:${pub}`)}` : `${channel}.${hmac(channel)}`;
      return { channel, signed, ...(pub !== undefined && !values.public ? { publicAddress: `${pub}.${hmac(`public:${pub}`)}` } : {}) };
    });
    io.out(values.json ? JSON.stringify(out, null, 2) : out.map((o) => o.signed).join('\n'));
    return 0;
  },
};
