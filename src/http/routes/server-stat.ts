import type { ServerResponse } from 'node:http';
import type { DailyCounters } from '../../stats/daily-counters.ts';
import type { ServerStatsReporter } from '../../stats/server-stats.ts';
import { CONTENT_TEXT, sendBody } from '../../wire/http-replies.ts';

/** `GET /server-stat/` (spec §5.5): a JSON array with one object per running jetpull process. */
export async function handleServerStat(res: ServerResponse, reporter: ServerStatsReporter, counters: DailyCounters): Promise<void> {
  counters.countRequest('serverStats');
  sendBody(res, 200, JSON.stringify(await reporter.readAll()), CONTENT_TEXT);
}
