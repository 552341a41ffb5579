import { createSigner, type Signer } from '../wire/channel-id.ts';
import { intOption, parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { commandConfig, connectHost } from './context.ts';
import { CliError, ExitCode, UsageError } from './errors.ts';
import { isHostPort, publicUrls } from './public-urls.ts';

const help = `Usage: jetpull config client <user> [--domain <host>] [--version 3|4] [--ttl <seconds>] [--config <file>]

Prints, as JSON, the object a portal's pull.application.config.get answers, for a
client of jetpull without a portal (the official pull client's start(config), or your
own): server URLs and version, the user's private channel (<priv>:<pub>.<sig>) and
public address, a shared channel every user holds, api revisions, config_timestamp
and serverTime.

The ids are derived from the security key and <user>, so they are the same every
time: publish to the user's private id (the 32 hex characters before ":" in
channels.private.id) and to channels.shared.id's id for everyone. Changing the key
changes every id.

Options:
  --domain <host>    host[:port] clients connect to (default: the listener serving sub)
  --version <n>      server.version: 4 protobuf with client publishing (default), 3 text
  --ttl <seconds>    how long the channels are valid; the client fetches a new config
                     after that (default 43205, the portal's channel lifetime)
  --config <file>    the server's config file
  -h, --help         this help

Version 5 (JSON-RPC, jwt) is not produced. Exit codes: 0 printed; 2 usage error, no
security key, or an invalid configuration.`;

/** The portal's channel lifetime, CPullChannel::CHANNEL_TTL (spec §2.7). */
const CHANNEL_TTL_SEC = 43_205;

export const configClient: Command = {
  name: 'config client',
  help,
  async run(argv, io) {
    const { values, args } = parseCommand(
      'config client',
      argv,
      { domain: { type: 'string' }, version: { type: 'string' }, ttl: { type: 'string' }, config: { type: 'string' } },
      { min: 1, max: 1, name: 'the user id' },
    );
    if (values.help) {
      io.out(help);
      return 0;
    }
    const user = args[0]!;
    if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(user)) throw new UsageError(`"${user}" is not a user id`, 'use letters, digits and _.@- (the portal uses its numeric user id)');
    const version = intOption('config client', 'version', values.version, 3) ?? 4;
    if (version > 4) throw new UsageError('--version takes 3 or 4', 'version 5 (JSON-RPC) clients are not served by jetpull');
    const ttlSec = intOption('config client', 'ttl', values.ttl, 60) ?? CHANNEL_TTL_SEC;
    const config = commandConfig(io, values.config);
    if (config.security.key === undefined) {
      throw new CliError(ExitCode.Usage, 'no security key is configured: the channel ids are derived from it', 'set PUSH_SECURITY__KEY or pass --config <file> with security.key');
    }
    const domain = values.domain ?? defaultHost(config.servers);
    if (!isHostPort(domain)) throw new UsageError(`--domain "${domain}" is not a host[:port]`, 'give the host only, e.g. --domain push.example.com');
    io.out(JSON.stringify(clientConfig(createSigner(config.security.key, config.security.algo), user, version, ttlSec, publicUrls(config, domain)), null, 2));
    return 0;
  },
};

function defaultHost(servers: ReadonlyArray<{ hostname: string; port: number; routes: { sub?: string | undefined } }>): string {
  const sub = servers.find((s) => s.routes.sub !== undefined) ?? servers[0]!;
  return `${connectHost(sub.hostname)}:${sub.port}`;
}

function clientConfig(signer: Signer, user: string, version: number, ttlSec: number, urls: ReturnType<typeof publicUrls>) {
  const hmac = (message: string): string => signer.sign(message)!;
  // 32 hex characters of an HMAC: unguessable without the key, like the portal's md5 ids.
  const derive = (label: string): string => hmac(`jetpull:${label}`).slice(0, 32);
  const priv = derive(`user:${user}:private`);
  const pub = derive(`user:${user}:public`);
  const shared = derive('shared');
  const nowMs = Date.now();
  const start = new Date(nowMs).toISOString();
  const end = new Date(nowMs + ttlSec * 1000).toISOString();
  return {
    server: {
      version,
      server_enabled: true,
      websocket_enabled: true,
      websocket: urls.websocket[0],
      websocket_secure: urls.websocket[1],
      long_polling: urls.longPolling[0],
      long_pooling_secure: urls.longPolling[1], // sic: the official client reads "pooling"
      publish_enabled: version >= 4,
      publish: urls.publishWeb[0],
      publish_secure: urls.publishWeb[1],
      // Must stay the same for the life of this config: the client restarts when it changes.
      config_timestamp: Math.floor(nowMs / 1000),
      mode: 'personal',
    },
    api: { revision_web: 19, revision_mobile: 3 },
    channels: {
      // Versions up to 3 hold the private id alone, as the portal hands it out (spec §2.2).
      private: { id: version >= 4 ? `${priv}:${pub}.${hmac(`${priv}:${pub}`)}` : `${priv}.${hmac(priv)}`, public_id: `${pub}.${hmac(`public:${pub}`)}`, start, end, type: 'private' },
      shared: { id: `${shared}.${hmac(shared)}`, start, end, type: 'shared' },
    },
    publicChannels: { [user]: { user_id: user, public_id: pub, signature: hmac(`public:${pub}`), start, end } },
    clientId: null,
    jwt: null,
    exp: 0,
    serverTime: start,
  };
}
