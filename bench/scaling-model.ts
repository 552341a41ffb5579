import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseOptions, usage, type OptSpecs } from './lib/cli.ts';
import { REPO_ROOT } from './lib/deploy.ts';

/**
 * The capacity model of docs/SCALING.md: measured per-unit costs (the JSON lines in
 * bench/results/, written by the scenarios named there) times a deployment and its
 * traffic (the options; defaults are the document's assumptions). Prints one row per
 * figure with the inputs it came from, then one JSON line.
 *
 *   node --import tsx bench/scaling-model.ts [--connections 1000000 --gateways 20 …]
 */

const OPTIONS: OptSpecs = {
  connections: { type: 'number', default: 1_000_000, help: 'client connections' },
  gateways: { type: 'number', default: 20, help: 'gateway processes' },
  nodes: { type: 'number', default: 3, help: 'NATS nodes (R3 streams: every node holds every stream)' },
  longPollShare: { type: 'number', default: 0.05, help: 'share of connections on long polling' },
  portals: { type: 'number', default: 10_000, help: 'portals (one shared channel each)' },
  nodesPerChannel: { type: 'number', default: 1, help: 'NATS nodes whose gateways hold a given channel (1: all of a user’s tabs on gateways of one node)' },
  deliveriesPerMin: { type: 'number', default: 1, help: 'messages a connection receives per minute, on average' },
  peak: { type: 'number', default: 4, help: 'peak hour over average' },
  broadcastShare: { type: 'number', default: 0.1, help: 'share of deliveries that come from shared-channel broadcasts' },
  portalConnections: { type: 'number', default: 100, help: 'connections one broadcast reaches' },
  storedBytes: { type: 'number', default: 520, help: 'bytes a stored copy takes (body ~300, headers, subject)' },
  retentionS: { type: 'number', default: 86_400, help: 'storage.messageTtlSec (PHP default expiry 86400)' },
  pingS: { type: 'number', default: 120, help: 'gateway.pingIntervalMs / 1000' },
  refreshS: { type: 'number', default: 30, help: 'presence refresh: storage.onlineTtlSec / 4' },
  longPollS: { type: 'number', default: 40, help: 'long-poll hold (an idle poll comes back this often)' },
  duplicateWindowS: { type: 'number', default: 120, help: 'storage.duplicateWindowMs / 1000' },
  extraChannelKiB: { type: 'number', default: 1.5, help: 'gateway memory of a connection’s second own channel (its public id): the idle benchmark holds one own channel, a subscription with its hub entry costs ~1.5 KiB (BENCHMARKS.md, idle memory)' },
  outageS: { type: 'number', default: 6, help: 'seconds a gateway is cut off from NATS before it notices and moves (stale-connection detection)' },
};

function result(file: string): { results: any; cpu: any } {
  const lines = readFileSync(join(REPO_ROOT, 'bench', 'results', file), 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as { results: any; cpu: any };
}

const o = parseOptions(process.argv.slice(2), OPTIONS);
if (process.argv.includes('--help')) {
  process.stdout.write(`${usage(OPTIONS)}\n`);
  process.exit(0);
}
const n = (k: string): number => o.num(k);

// Measured per-unit costs (see docs/SCALING.md for the runs).
const idle = result('idle.json').results;
const interest = result('scaling-interest.json').results;
const writes = result('scaling-cluster-writes.json').results.runs as any[];
const memory = result('scaling-memory.json').results.subjectState as any[];
const delivery = result('scaling-delivery-cost.json').results.phases as any[];
const scans = result('scaling-catch-up.json').results.runs as any[];
const fanout = result('scaling-fanout.json');

const r3 = (path: string): any => writes.find((w) => w.replicas === 3 && w.path === path);
const leaderUs = (w: any): number => w.nodeCpuUsPerWrite[Object.values(w.leaders)[0] as string];
const followerUs = (w: any): number => {
  const leader = Object.values(w.leaders)[0] as string;
  const f = Object.entries(w.nodeCpuUsPerWrite).filter(([k]) => k !== leader).map(([, v]) => v as number);
  return f.reduce((a, b) => a + b, 0) / f.length;
};
const mem3 = memory.find((m) => m.replicas === 3);
const memStored = (result('scaling-memory-stored.json').results.subjectState as any[])[0];
const avgNodes = (rec: Record<string, number>): number => Object.values(rec).reduce((a, b) => a + b, 0) / Object.values(rec).length;
const unit = {
  gatewayKiBPerConn: idle.jetpullKiBPerConnection as number,
  gatewayBaseMiB: idle.jetpullRssBeforeMiB as number,
  // Go live heap after GC (GOGC=2 run); RSS under the default GOGC=100 can reach twice it.
  localSubB: interest.liveHeapBytesPerSubscription.n1Local as number,
  routeSubB: (interest.liveHeapBytesPerSubscription.n2Route + interest.liveHeapBytesPerSubscription.n3Route) / 2,
  perSubjectB: avgNodes(mem3.liveHeapBytes.perSubject),
  perPresenceKeyB: avgNodes(mem3.liveHeapBytes.perPresenceKey),
  perWriteInWindowB: avgNodes(mem3.liveHeapBytes.perWriteInDuplicateWindow),
  // From the one-server run with 2 M messages: the reading's resolution is 1 MiB over 2N messages.
  perStoredMessageB: Math.max(0, avgNodes(memStored.liveHeapBytes.perStoredMessage)),
  perStoredMessageResolutionB: (1024 * 1024) / (2 * memStored.writes),
  deliveredUs: delivery.find((p) => p.mode === 'channel' && p.phase === 'delivered').jetpullUsPerMessage as number,
  discardUs: delivery.find((p) => p.mode === 'all' && p.phase === 'not held').jetpullUsPerMessage as number,
  // jetpull's % of a core over the window, per delivery (one frame carried ~80 of them).
  fanoutUsPerDelivery: (fanout.cpu.jetpullPct * fanout.results.windowS * 1e4) / fanout.results.deliveries,
  fanoutMessagesPerFrame: fanout.results.messagesPerFrame as number,
  copyUs: interest.wildcardFanout.find((f: any) => f.subscribers > 1).natsUsPerCopy as number,
  writeLeaderUs: leaderUs(r3('stream')),
  writeFollowerUs: followerUs(r3('stream')),
  writeCeilingHere: r3('stream').perSec as number,
  presenceLeaderUs: leaderUs(r3('presence')),
  presenceFollowerUs: followerUs(r3('presence')),
  presenceWriterUs: r3('presence').clientCpuUsPerWrite as number,
  presenceCeilingHere: r3('presence').perSec as number,
  snapshotLeaderUs: leaderUs(writes.find((w) => w.replicas === 3 && String(w.path).startsWith('snapshot'))),
  scanGatewayUs: scans.find((s) => s.replicas === 3 && s.gateways === 1).clientUsPerMessage as number,
  scanLeaderUs: (() => {
    const s = scans.find((x) => x.replicas === 3 && x.gateways > 1);
    return (Object.values(s.nodeUsPerMessage) as number[]).reduce((a, b) => a + b, 0);
  })(),
  scanRateHere: scans.find((s) => s.replicas === 3 && s.gateways === 1).messagesPerSecPerScan as number,
};

// The deployment and its traffic.
const C = n('connections');
const G = n('gateways');
const N = n('nodes');
const perGateway = C / G;
const channels = 2 * C + n('portals'); // private + public id per connection, a shared channel per portal
const D = (C * n('deliveriesPerMin')) / 60;
const W = D * (1 - n('broadcastShare')) + (D * n('broadcastShare')) / n('portalConnections');
const Wpeak = W * n('peak');
const ws = C * (1 - n('longPollShare'));
const lp = C * n('longPollShare');
// A pong rewrites both keys of a connection when older than the refresh; an idle long poll every hold (> refresh).
const presenceConn = (ws * 2) / Math.max(n('pingS'), n('refreshS')) + (lp * 2) / Math.max(n('longPollS'), n('refreshS'));
// The shared channel: once per refresh per gateway holding it (a portal of 100 connections is on nearly every gateway).
const portalOnGateway = 1 - Math.exp(-n('portalConnections') / G);
const presenceShared = (G * n('portals') * portalOnGateway) / n('refreshS');
const P = presenceConn + presenceShared;
const stored = W * n('retentionS');
const h = n('nodesPerChannel');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const rows: Array<[string, string]> = [];
const out: Record<string, number> = {};
const row = (key: string, label: string, value: number, text: string): void => {
  out[key] = Math.round(value * 1000) / 1000;
  rows.push([label, text]);
};
const f = (x: number, d = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

row('deliveriesPerSec', 'deliveries/s', D, `${f(D)} average, ${f(D * n('peak'))} peak`);
row('writesPerSec', 'message writes/s (stored copies)', W, `${f(W)} average, ${f(Wpeak)} peak`);
row('presencePutsPerSec', 'presence puts/s', P, `${f(P)} (WebSocket ${f((ws * 2) / Math.max(n('pingS'), n('refreshS')))}, long poll ${f((lp * 2) / Math.max(n('longPollS'), n('refreshS')))}, shared channels ${f(presenceShared)})`);
row('subscriptions', 'live subscriptions (distinct channels)', channels, `${f(channels)}`);

const connKiB = unit.gatewayKiBPerConn + n('extraChannelKiB');
const gwMiB = unit.gatewayBaseMiB + (perGateway * connKiB) / 1024;
row('gatewayRssMiB', 'gateway RSS', gwMiB, `${f(gwMiB)} MiB each (${f(perGateway)} connections x (${unit.gatewayKiBPerConn} + ${n('extraChannelKiB')} KiB for the public id) + ${unit.gatewayBaseMiB} MiB)`);
const gwCpu = (D / G) * unit.deliveredUs + (perGateway / n('pingS')) * unit.deliveredUs + (presenceConn / G + presenceShared / G) * unit.presenceWriterUs;
row('gatewayCpuCores', 'gateway CPU, steady', gwCpu / 1e6, `${f(gwCpu / 1e4, 1)} % of a core average, ${f((gwCpu + (D / G) * (n('peak') - 1) * unit.deliveredUs) / 1e4, 1)} % peak (deliveries x ${unit.deliveredUs} us, pings at the same, presence puts x ${unit.presenceWriterUs} us)`);

const interestB = channels * ((h / N) * unit.localSubB + (h * (N - 1)) / N * unit.routeSubB);
row('natsInterestGiB', 'nats-server interest, per node', interestB / GiB, `${f(interestB / GiB, 2)} GiB (${f(channels)} channels: ${f(h / N, 2)} local x ${unit.localSubB} B + ${f((h * (N - 1)) / N, 2)} route x ${f(unit.routeSubB)} B)`);
const stateB = channels * unit.perSubjectB + 2 * C * unit.perPresenceKeyB + W * n('duplicateWindowS') * unit.perWriteInWindowB + stored * unit.perStoredMessageB;
row('natsStreamStateGiB', 'nats-server stream state, per node', stateB / GiB, `${f(stateB / GiB, 2)} GiB (channels x ${f(unit.perSubjectB)} B, presence keys x ${f(unit.perPresenceKeyB)} B, ${f(W * n('duplicateWindowS'))} ids in the duplicate window x ${f(unit.perWriteInWindowB)} B, ${f(stored / 1e9, 2)} G stored messages x ${f(unit.perStoredMessageB, 1)} B, measured to ±${f(unit.perStoredMessageResolutionB, 1)} B)`);
row('natsDiskGB', 'disk, per node (R3: every node a replica)', (stored * n('storedBytes')) / 1e9, `${f((stored * n('storedBytes')) / 1e9)} GB for ${f(n('retentionS') / 3600)} h of ${f(W)} writes/s x ${n('storedBytes')} B`);

const everyone = perGateway * unit.deliveredUs;
row('broadcastAllCpuS', 'a message to every connection, per gateway', everyone / 1e6, `${f(everyone / 1e6, 2)} s CPU (${f(perGateway)} frames x ${unit.deliveredUs} us); a burst to the same connections coalesces: ${f(unit.fanoutUsPerDelivery, 2)} us per delivery at ${f(unit.fanoutMessagesPerFrame)} per frame`);

const leader = (W * unit.writeLeaderUs + P * unit.presenceLeaderUs) / 1e6;
const leaderPeak = (Wpeak * unit.writeLeaderUs + P * unit.presenceLeaderUs) / 1e6;
row('leaderCores', 'stream leaders CPU (messages + presence)', leader, `${f(leader, 2)} cores average, ${f(leaderPeak, 2)} peak (writes x ${unit.writeLeaderUs} us, presence x ${unit.presenceLeaderUs} us)`);
const followers = (W * unit.writeFollowerUs + P * unit.presenceFollowerUs) / 1e6;
row('followerCores', 'follower CPU, per node', followers, `${f(followers, 2)} cores average (writes x ${f(unit.writeFollowerUs, 1)} us, presence x ${f(unit.presenceFollowerUs, 1)} us)`);
const oneCoreWrites = 1e6 / unit.writeLeaderUs;
row('messageLeaderHeadroom', 'message stream leader: one core of leader work', oneCoreWrites, `${f(oneCoreWrites)} writes/s (1 / ${unit.writeLeaderUs} us); needed ${f(W)} average = ${f((W / oneCoreWrites) * 100)} %, ${f(Wpeak)} peak = ${f((Wpeak / oneCoreWrites) * 100)} %; ${f(unit.writeCeilingHere)}/s measured here (3 nodes on 2 shared cores)`);
const oneCorePresence = 1e6 / unit.presenceLeaderUs;
row('presenceLeaderHeadroom', 'presence bucket leader: one core of leader work', oneCorePresence, `${f(oneCorePresence)} puts/s (1 / ${unit.presenceLeaderUs} us); needed ${f(P)} = ${f((P / oneCorePresence) * 100)} %; ${f(unit.presenceCeilingHere)}/s measured here`);

const catchUpMsgs = W * n('outageS');
row('catchUpMessages', `catch-up of a gateway cut off for ${n('outageS')} s`, catchUpMsgs, `${f(catchUpMsgs)} messages scanned (${f(W)}/s x ${n('outageS')} s): gateway ${f((catchUpMsgs * unit.scanGatewayUs) / 1e6, 2)} s CPU, stream nodes ${f((catchUpMsgs * unit.scanLeaderUs) / 1e6, 2)} s CPU, ${f(catchUpMsgs / unit.scanRateHere, 1)} s at ${f(unit.scanRateHere)} msgs/s; peak ${f(Wpeak * n('outageS'))}`);
row('catchUpPerOutageSecond', 'catch-up cost per second of outage, per gateway', W * unit.scanGatewayUs / 1e6, `${f((W * unit.scanGatewayUs) / 1e3)} ms gateway CPU + ${f((W * unit.scanLeaderUs) / 1e3)} ms NATS CPU (${f((Wpeak * unit.scanGatewayUs) / 1e3)} + ${f((Wpeak * unit.scanLeaderUs) / 1e3)} ms at peak)`);

// Subject sharding with filtering in the gateway: every gateway receives every message.
const discard = (W * (G - 1)) / G * unit.discardUs;
const copies = W * G * unit.copyUs;
row('wildcardGatewayCpu', 'wildcard shards: discard CPU per gateway', discard / 1e6, `${f(discard / 1e4, 1)} % of a core (${f((W * (G - 1)) / G)} msgs/s x ${unit.discardUs} us), ${f((discard * n('peak')) / 1e4, 1)} % peak`);
row('wildcardNatsCpu', 'wildcard shards: nats-server copies', copies / 1e6, `${f(copies / 1e6, 2)} cores (${f(W * G)} copies/s x ${unit.copyUs} us), ${f((W * G * n('storedBytes')) / MiB)} MiB/s to gateways; peak x${n('peak')}`);
row('wildcardSavedGiB', 'wildcard shards: memory no longer needed', interestB / GiB, `${f(interestB / GiB, 2)} GiB per node, ${f((perGateway * 2 * interest.clientBytesPerSubscription) / MiB)} MiB per gateway`);

const width = Math.max(...rows.map((r) => r[0].length));
process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
process.stdout.write(`${JSON.stringify({ model: 'scaling', params: o.all(), unit, figures: out })}\n`);
