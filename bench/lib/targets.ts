import type { Deployment } from './deploy.ts';
import type { NchanServer } from './nchan.ts';
import type { SampleTarget } from './proc.ts';
import { expectAck, publishBatches, PublishError, textPublishRequest, type BatchItem } from './publish.ts';
import type { HttpPool, HttpResponse } from './raw-http.ts';
import { boundedLoop } from './util.ts';

/**
 * A push server the load runs against, in its own dialect: jetpull (signed
 * CHANNEL_ID tokens, an empty 200 once stored, protobuf batches for bulk loads) or a
 * peer such as nginx + nchan (plain channel ids, 201/202 with a status body).
 */
export interface PushTarget {
  /** Name in tables and JSON (`jetpull`, `nchan`). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Processes whose CPU and RSS are reported. */
  readonly targets: SampleTarget[];
  assertAlive(): void;
  /** WebSocket path of a client on these channels (32-hex ids). */
  wsPath(channels: readonly string[], binary: boolean): string;
  /** A raw HTTP request that publishes `body` to one channel. */
  publishRequest(channel: string, body: string, expirySec: number): string;
  /** Throws unless the answer acknowledges a publish. */
  expectAck(res: HttpResponse): void;
  /** Publishes every item as fast as the server takes them (warm-ups). */
  publishMany(pool: HttpPool, items: readonly BatchItem[], deadline: number): Promise<{ acked: number; failed: number }>;
}

export function jetpullTarget(dep: Deployment): PushTarget {
  return {
    name: 'jetpull',
    host: dep.host,
    port: dep.port,
    targets: dep.targets,
    assertAlive: () => dep.assertAlive(),
    wsPath: (channels, binary) =>
      `/bitrix/subws/?CHANNEL_ID=${channels.map((c) => `${c}.${dep.sign(c)}`).join('/')}${binary ? '&binaryMode=true' : ''}&revision=19`,
    publishRequest: (channel, body, expirySec) => textPublishRequest(dep.host, dep.port, channel, body, expirySec),
    expectAck,
    publishMany: (pool, items, deadline) => publishBatches(pool, dep.host, dep.port, items, 100, deadline),
  };
}

/** nchan answers a publish 201 (subscribers got it) or 202 (stored, nobody listening). */
function expectNchanAck(res: HttpResponse): void {
  if (res.status !== 201 && res.status !== 202) throw new PublishError(`publish answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`);
}

export function nchanTarget(n: NchanServer): PushTarget {
  const publishRequest = (channel: string, body: string, expirySec: number): string => textPublishRequest(n.host, n.port, channel, body, expirySec);
  return {
    name: 'nchan',
    host: n.host,
    port: n.port,
    targets: [{ name: 'nchan', pid: n.pid }],
    assertAlive: () => n.assertAlive(),
    wsPath: (channels) => `/bitrix/subws/?CHANNEL_ID=${channels.join('/')}`,
    publishRequest,
    expectAck: expectNchanAck,
    async publishMany(pool, items, deadline) {
      let acked = 0;
      let failed = 0;
      await boundedLoop(items.length, pool.size, deadline, async (i) => {
        const it = items[i]!;
        try {
          expectNchanAck(await pool.request(publishRequest(it.channel, it.body, it.expirySec)));
          acked++;
        } catch {
          failed++;
        }
      });
      return { acked, failed };
    },
  };
}
