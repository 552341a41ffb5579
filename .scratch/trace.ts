import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalNats, type LocalNats } from '../src/nats/local-server.ts';
import { startTestApp } from '../test/helpers/app.ts';
import { newUser, newShared } from '../test/helpers/channels.ts';
import { publishText } from '../test/helpers/backend.ts';
import { openWs } from '../test/helpers/ws-client.ts';
import { incomingMessages, channelStatsRequest, requestBatch, hex } from '../test/helpers/protobuf.ts';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

const lines: string[] = [];
const store = mkdtempSync(join(tmpdir(), 'trace-store-'));
const binary = process.env.JETPULL_TEST_NATS_BINARY;
let port = -1;
const start = async (): Promise<LocalNats> => {
  const s = await startLocalNats({ binary, storeDir: store, port, extraConfig: 'trace: true\ndebug: true', onLog: (l) => lines.push(l) });
  port = s.port;
  return s;
};
let nats = await start();
const url = nats.url;
const role = process.env.ROLES ?? 'split';
const apps = role === 'all'
  ? [await startTestApp(url, { role: 'all', nats: { name: 'jp-all' }, processUniqueId: 'all' })]
  : [await startTestApp(url, { role: 'publisher', nats: { name: 'jp-pub' }, processUniqueId: 'pub' }),
     await startTestApp(url, { role: 'gateway', nats: { name: 'jp-gw' }, processUniqueId: 'gw', gateway: { longPollTimeoutMs: 1000, maxConcurrentReplays: 1 } })];
const pub = apps[0]!;
const gw = apps[apps.length - 1]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const u = newUser();
const shared = newShared();
const ws = await openWs(`${gw.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}/${shared.token}&binaryMode=true`);
console.log('text', (await publishText(pub.base, `${u.priv}/${shared.id}`, '{"a":1}', 600)).status);
console.log('bin', (await fetch(`${pub.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: incomingMessages([{ receivers: [{ id: hex(u.priv), isPrivate: true }], body: '{"b":1}', expiry: 600 }]) })).status);
console.log('stats', (await fetch(`${pub.base}/bitrix/pub/?CHANNEL_ID=${u.priv}`)).status);
console.log('binstats', (await fetch(`${pub.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: channelStatsRequest([{ id: hex(u.priv), isPrivate: true }]) })).status);
console.log('binserverstats', (await fetch(`${pub.base}/bitrix/pub/?binaryMode=true`, { method: 'POST', body: requestBatch({ serverStats: {} }) })).status);
await sleep(2500);
for (const a of apps) console.log('server-stat', (await fetch(`${a.base}/server-stat/`)).status);
// client publish via rest and ws binary
const other = newUser();
const rest = await fetch(`${gw.base}/bitrix/rest/?CHANNEL_ID=${other.token}`, { method: 'POST', body: incomingMessages([{ receivers: [{ id: hex(u.pub), isPrivate: false, signature: Buffer.from(u.publicAddress.split('.')[1]!, 'hex') }], body: '{"c":1}', expiry: 60 }]) });
console.log('rest', rest.status);
ws.ws.send(channelStatsRequest([{ id: hex(u.pub), isPrivate: false, signature: Buffer.from(u.publicAddress.split('.')[1]!, 'hex') }]));
// nats publish api
const nc = await connect({ servers: url, name: 'jp-client' });
const r = await nc.request('push.publish', JSON.stringify({ channels: [u.priv], body: { n: 1 }, expiry: 600 }), { timeout: 5000 });
console.log('nats api', r.string());
// replay by mid
await sleep(500);
const mid = '10000000000000000000000000';
const one = await openWs(`${gw.wsBase}/bitrix/subws/?CHANNEL_ID=${u.token}&mid=${mid}`);
await one.waitFrames(1); one.close();
// long poll with mid
console.log('lp', (await fetch(`${gw.base}/bitrix/sub/?CHANNEL_ID=${u.token}&mid=${mid}`)).status);
// storm: 40 replays at once -> scan
const storm = await Promise.all(Array.from({ length: 40 }, () => openWs(`${gw.wsBase}/bitrix/subws/?CHANNEL_ID=${newUser().token}/${shared.token}&mid=${mid}`)));
await sleep(1500);
for (const s of storm) s.close();
// nats restart -> catch-up
await nats.stop('SIGKILL');
await sleep(500);
nats = await start();
await sleep(4000);
console.log('text after restart', (await publishText(pub.base, `${u.priv}`, '{"a":2}', 600)).status);
await sleep(1500);
// stream deleted -> re-created
const jsm = await jetstreamManager(nc);
await jsm.streams.delete('PUSH_MESSAGES');
await sleep(6000);
console.log('text after delete', (await publishText(pub.base, `${u.priv}`, '{"a":3}', 600)).status);
await sleep(1500);
ws.close();
await nc.close();
for (const a of apps) await a.stop();
await nats.stop();
// parse
const names = new Map<string, string>();
const subj = new Map<string, Set<string>>();
const viol: string[] = [];
for (const l of lines) {
  if (/[Vv]iolation/.test(l)) viol.push(l);
  const m = /cid:(\d+) - "[^"]*:([^"]+)" - <<- \[(PUB|SUB|HPUB) ([^ \]]+)/.exec(l);
  if (m) {
    const key = `${m[2]} ${m[3] === 'HPUB' ? 'PUB' : m[3]}`;
    let s = subj.get(key); if (!s) subj.set(key, (s = new Set()));
    s.add(m[4]!.replace(/_INBOX\.[^ ]*/, '_INBOX.>').replace(/[a-f0-9]{32}/g, '<id>').replace(/\.[A-Za-z0-9]{22}(\.|$)/g, '.<nuid>$1'));
  }
}
for (const [k, v] of [...subj].sort()) console.log(k, '\n   ', [...v].sort().join('\n    '));
console.log('violations', viol.length, viol.slice(0, 5));
process.exit(0);
