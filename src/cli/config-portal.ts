import { parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { commandConfig, routeUrl } from './context.ts';
import { UsageError } from './errors.ts';
import { isHostPort, publicUrls } from './public-urls.ts';

const help = `Usage: jetpull config portal [--domain <host>] [--publish-url <url>] [--format text|json|php] [--config <file>]

Prints the options of the portal's pull module (Settings > Module settings > Push and
Pull, or the 'pull' block of /bitrix/.settings.php) that point it at this jetpull:
listener, websocket and client-publish URLs on the public host, path_to_publish on
the trusted listener, signature_key and signature_algo from jetpull's security
settings, nginx_version 4 (Push server 2.0) and the limits.

Options:
  --domain <host>      the public host[:port] browsers reach jetpull on (default #DOMAIN#,
                       which the portal replaces with its own host)
  --publish-url <url>  the URL the portal publishes to (default: the listener serving the
                       pub route); it must not be reachable from the internet
  --format <f>         text (default), json, or php (a .settings.php 'pull' block)
  --config <file>      the server's config file
  -h, --help           this help

The output holds the security key. Exit codes: 0 printed; 2 usage error or invalid configuration.`;

export const configPortal: Command = {
  name: 'config portal',
  help,
  async run(argv, io) {
    const { values } = parseCommand(
      'config portal',
      argv,
      { domain: { type: 'string' }, 'publish-url': { type: 'string' }, format: { type: 'string' }, config: { type: 'string' } },
      { min: 0, max: 0, name: '' },
    );
    if (values.help) {
      io.out(help);
      return 0;
    }
    const format = values.format ?? 'text';
    if (!['text', 'json', 'php'].includes(format)) throw new UsageError(`--format takes text, json or php, got "${format}"`, 'see jetpull config portal --help');
    const domain = values.domain ?? '#DOMAIN#';
    if (!isHostPort(domain)) throw new UsageError(`--domain "${domain}" is not a host[:port]`, 'give the host only, e.g. --domain portal.example.com (no scheme, no path)');
    const config = commandConfig(io, values.config);
    const publishUrl = values['publish-url'] ?? routeUrl(config, 'pub', undefined).href;
    const urls = publicUrls(config, domain);
    const { limits, security } = config;
    const options: Record<string, string> = {
      path_to_listener: urls.longPolling[0],
      path_to_listener_secure: urls.longPolling[1],
      path_to_modern_listener: urls.longPolling[0],
      path_to_modern_listener_secure: urls.longPolling[1],
      path_to_mobile_listener: urls.longPolling[0],
      path_to_mobile_listener_secure: urls.longPolling[1],
      path_to_websocket: urls.websocket[0],
      path_to_websocket_secure: urls.websocket[1],
      path_to_publish: publishUrl,
      path_to_publish_web: urls.publishWeb[0],
      path_to_publish_web_secure: urls.publishWeb[1],
      nginx_version: '4',
      nginx_command_per_hit: String(limits.maxChannelsPerRequest),
      nginx: 'Y',
      nginx_headers: 'N',
      websocket: 'Y',
      signature_key: security.key ?? '',
      signature_algo: security.algo,
      enable_protobuf: 'Y',
      limit_max_payload: String(limits.maxPayloadBytes),
      limit_max_messages_per_request: String(limits.maxMessagesPerRequest),
      limit_max_channels_per_request: String(limits.maxChannelsPerRequest),
      server_mode: 'personal',
    };
    // Read by portals set to queue server version 5 only: next to path_to_publish (same host), left out where no listener serves it.
    const apiPath = config.servers.find((srv) => srv.routes.api !== undefined)?.routes.api;
    if (apiPath !== undefined) options.path_to_json_rpc = new URL(apiPath, publishUrl).href;
    if (security.key === undefined) {
      io.err('jetpull config portal: no security key is configured, so signature_key is empty; set PUSH_SECURITY__KEY on the server and here, or the portal\'s public channels cannot work');
    }
    io.out(render(options, format));
    return 0;
  },
};

function render(options: Record<string, string>, format: string): string {
  const entries = Object.entries(options);
  if (format === 'json') return JSON.stringify(options, null, 2);
  if (format === 'php') {
    const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    return ["'pull' => [", "  'value' => [", ...entries.map(([k, v]) => `    ${q(k)} => ${q(v)},`), '  ],', '],'].join('\n');
  }
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
