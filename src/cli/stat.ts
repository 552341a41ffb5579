import type { ServerStat } from '../stats/server-stats.ts';
import { parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { bodySigner } from '../client/http-transport.ts';
import { commandConfig, getJson, routeUrl, signatureOf } from './context.ts';
import { CliError, ExitCode } from './errors.ts';
import { table } from './table.ts';

const help = `Usage: jetpull stat [--channel <id>]... [--json] [--url <base>] [--config <file>]

Shows every running jetpull process from /server-stat/ (connections, channels, today's
messages and requests, the replay window) and, for the private ids given with
--channel, whether they are online anywhere (the pub route's channel stats: seen
within storage.onlineTtlSec + onlineDeltaSec).

Options:
  --channel <id>   a private id to look up; repeat for more (at most limits.maxChannelsPerRequest)
  --json           print {"servers": [...], "channels": [...]} as JSON
  --url <base>     the server's base URL (default: the listeners serving stat and pub)
  --config <file>  the server's config file
  -h, --help       this help

Exit codes: 0 shown; 1 the server cannot be reached or answered an error; 2 usage error.`;

export const stat: Command = {
  name: 'stat',
  help,
  async run(argv, io) {
    const { values } = parseCommand(
      'stat',
      argv,
      { channel: { type: 'string', multiple: true }, json: { type: 'boolean' }, url: { type: 'string' }, config: { type: 'string' } },
      { min: 0, max: 0, name: '' },
    );
    if (values.help) {
      io.out(help);
      return 0;
    }
    const config = commandConfig(io, values.config);
    const servers = (await getJson(routeUrl(config, 'stat', values.url), 'server stats')) as ServerStat[];
    if (!Array.isArray(servers)) throw new CliError(ExitCode.Failure, 'the server stats are not a list', 'is that a jetpull listener?');
    const channels = values.channel?.length ? await online(routeUrl(config, 'pub', values.url), values.channel, signatureOf(config).signature) : [];
    if (values.json) {
      io.out(JSON.stringify({ servers, channels }, null, 2));
      return 0;
    }
    io.out(serverTable(servers));
    for (const s of servers) for (const w of s.jetpull?.warnings ?? []) io.out(`warning (${s.processUniqueId}): ${w}`);
    if (channels.length > 0) io.out(`\n${table(['CHANNEL', 'ONLINE'], channels.map((c) => [c.channel, c.online ? 'yes' : 'no']))}`);
    return 0;
  },
};

function serverTable(servers: readonly ServerStat[]): string {
  const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
  const rows = [...servers]
    .sort((a, b) => a.processUniqueId.localeCompare(b.processUniqueId))
    .map((s) => [
      s.processUniqueId,
      s.pid,
      Math.max(0, Math.round((Date.now() - s.date) / 1000)),
      s.websockets,
      s.pollings,
      s.channels,
      sum(s.daily.messages),
      sum(s.daily.requests),
      s.jetpull?.replayWindowSec ?? '-',
    ]);
  if (rows.length === 0) return 'no jetpull process reported in the last 10 s';
  return table(['PROCESS', 'PID', 'AGE_S', 'WEBSOCKETS', 'POLLINGS', 'CHANNELS', 'MESSAGES_TODAY', 'REQUESTS_TODAY', 'REPLAY_WINDOW_S'], rows);
}

/** GET on the pub route; with a key it is signed (the HMAC of the CHANNEL_ID value), for security.signedPublishing. */
async function online(pub: URL, ids: readonly string[], key: { key: string; algo: string } | undefined): Promise<Array<{ channel: string; online: boolean }>> {
  const bad = ids.find((id) => !/^[a-f0-9]{32}$/.test(id));
  if (bad !== undefined) throw new CliError(ExitCode.Usage, `--channel "${bad}" is not a private id`, 'give the 32 lowercase hex private id (the part before ":" or ".")');
  const url = new URL(pub);
  const channels = ids.join('/');
  url.searchParams.set('CHANNEL_ID', channels);
  if (key !== undefined) url.searchParams.set('signature', bodySigner(key.key, key.algo)(channels));
  const answer = (await getJson(url, 'channel stats')) as { infos?: Array<{ channel: string }> };
  const on = new Set((answer.infos ?? []).map((i) => i.channel));
  return ids.map((channel) => ({ channel, online: on.has(channel) }));
}
