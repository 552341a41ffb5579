import type { ServerResponse } from 'node:http';
import { channelKey } from '../../wire/channel-id.ts';
import type { Presence } from '../../presence/presence.ts';
import type { DailyCounters } from '../../stats/daily-counters.ts';
import type { ChannelIdParser } from '../../wire/channel-id.ts';
import { CloseCode } from '../../errors/close-codes.ts';
import { CONTENT_TEXT, sendBody, sendPushError } from '../../wire/http-replies.ts';
import { single, type ParsedUrl } from '../request.ts';

export interface ChannelStatsDeps {
  parser: ChannelIdParser;
  presence: Presence;
  counters: DailyCounters;
  maxChannelsPerRequest: number;
}

/**
 * `GET /bitrix/pub/?CHANNEL_ID=a/b/…` (spec §5.4): the private ids that are online
 * anywhere in the deployment, as `{"infos":[{"channel":"<id>","subscribers":1},…]}`.
 * Offline ids and public ids are left out; no usable id is 4017, too many 4018.
 */
export async function handleChannelStats(res: ServerResponse, url: ParsedUrl, deps: ChannelStatsDeps): Promise<void> {
  const raw = single(url.query, 'CHANNEL_ID');
  const tokens = deps.parser.parse(typeof raw === 'string' ? raw : null, 'trusted');
  if (tokens === null || tokens.length === 0) return sendPushError(res, CloseCode.NoChannels);
  if (tokens.length > deps.maxChannelsPerRequest) return sendPushError(res, CloseCode.TooManyChannels);
  deps.counters.countRequest('channelStats');
  const ids = [...new Set(tokens.map((t) => t.privateId))];
  const online = await deps.presence.online(ids.map((id) => channelKey({ id, isPrivate: true })));
  const infos = ids.filter((_, i) => online[i]).map((channel) => ({ channel, subscribers: 1 }));
  sendBody(res, 200, JSON.stringify({ infos }), CONTENT_TEXT);
}
