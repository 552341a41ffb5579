import { createSigner } from '../wire/channel-id.ts';
import { encodePullToken, PULL_TOKEN_TTL_SEC } from '../wire/jwt.ts';
import { intOption, parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { commandConfig } from './context.ts';
import { CliError, ExitCode, UsageError } from './errors.ts';

const help = `Usage: jetpull sign <channel>... [--public] [--json] [--config <file>]
       jetpull sign --token --host <host id> [--user <user id>] [<channel>...] [--ttl-sec <s>]

Signs channel ids with the configured security key (PUSH_SECURITY__KEY, or
security.key of --config), as the portal's pull module does (spec §2.3):

  <id>           -> <id>.<HMAC(id)>               a shared channel, or a private id (versions 1-3)
  <priv>:<pub>   -> <priv>:<pub>.<HMAC(priv:pub)> the private channel of a version 4 client
  --public <pub> -> <pub>.<HMAC("public:"+pub)>    the address other clients publish to

  --token        -> a version 5 connection token (JWT, HS256 with the key) as the pull
                    module's Bitrix\\Pull\\Auth\\Jwt makes it: the client connects with
                    token=<it>; its user's channel is where /bitrix/api/ userList
                    publishes of --host go

Ids are 32 lowercase hex characters. One line per channel; --json adds every form.

Options:
  --public         the arguments are public ids; print their public addresses
  --token          print one version 5 token for --user and the channel ids given
  --host <id>      with --token: the portal's host id (its pull module option host_id)
  --user <id>      with --token: the user id (sub)
  --ttl-sec <s>    with --token: lifetime, default 43200 (12 h, as the portal's)
  --json           print [{"channel", "signed", "publicAddress"?}] as JSON
  --config <file>  the server's config file (for security.key and security.algo)
  -h, --help       this help

Exit codes: 0 signed; 2 no key configured, an id that is not 32 lowercase hex, or a
token without --host or without a user and channels.`;

const ID = /^[a-f0-9]{32}$/;

export const sign: Command = {
  name: 'sign',
  help,
  async run(argv, io) {
    const { values, args } = parseCommand(
      'sign',
      argv,
      {
        public: { type: 'boolean' },
        json: { type: 'boolean' },
        config: { type: 'string' },
        token: { type: 'boolean' },
        host: { type: 'string' },
        user: { type: 'string' },
        'ttl-sec': { type: 'string' },
      },
      { min: 0, max: Infinity, name: 'a channel id' },
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
    if (values.token) {
      const host = values.host;
      if (host === undefined || !/^[A-Za-z0-9_.-]{1,64}$/.test(host)) throw new UsageError('--token needs --host <host id>', 'the portal\'s pull module option host_id (letters, digits, _ . -)');
      if (values.user !== undefined && !/^[1-9][0-9]{0,18}$/.test(values.user)) throw new UsageError(`--user "${values.user}" is not a user id`, 'a positive whole number');
      if (values.user === undefined && args.length === 0) throw new UsageError('a token names a user or channels', 'pass --user <id>, channel ids, or both');
      for (const id of args) if (!ID.test(id)) throw new UsageError(`"${id}" is not a channel id`, 'an id is 32 lowercase hex characters');
      const ttlSec = intOption('sign', 'ttl-sec', values['ttl-sec'], 1) ?? PULL_TOKEN_TTL_SEC;
      const nowSec = Math.floor(Date.now() / 1000);
      io.out(encodePullToken({ hostId: host, userId: values.user, channelIds: args, nowSec, ttlSec }, (m) => signer.signSha256(m)!));
      return 0;
    }
    if (args.length === 0) throw new UsageError('a channel id is missing', 'see jetpull sign --help');
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
