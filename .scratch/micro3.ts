// CPU of receiving and dropping republished-like messages on a wildcard subscription (scratch)
import { connect, headers } from '@nats-io/transport-node';
import { startLocalNats } from '../src/nats/local-server.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const nats = await startLocalNats({ storeDir: mkdtempSync(join(tmpdir(), 'micro3-')), port: -1 });
const pub = await connect({ servers: nats.url, noAsyncTraces: true });
const sub = await connect({ servers: nats.url, noAsyncTraces: true });
const N = 200_000;
const held = new Map<string, () => void>([['priv.x', () => undefined]]);
let got = 0;
sub.subscribe('push.live.>', { callback: (_e, m) => { got++; const k = m.subject.slice(10); const h = held.get(k); if (h) h(); } });
await sub.flush();
const body = new Uint8Array(200);
const h = headers(); h.set('Nats-Stream', 'PUSH_MESSAGES'); h.set('Nats-Subject', 'push.msg.priv.0123456789abcdef0123456789abcdef'); h.set('Nats-Sequence', '123456'); h.set('Nats-Time-Stamp', new Date().toISOString()); h.set('Nats-Last-Sequence', '123000'); h.set('Jp-Expiry', '3600'); h.set('Nats-Msg-Id', 'abcdefabcdefabcdef');
const c0 = process.cpuUsage();
for (let i = 0; i < N; i++) { pub.publish(`push.live.priv.${(i % 5000).toString(16).padStart(32, '0')}`, body, { headers: h }); if (i % 5000 === 0) await pub.flush(); }
await pub.flush();
while (got < N) await new Promise((r) => setTimeout(r, 20));
const cpu = process.cpuUsage(c0);
console.log(`publisher+receiver in one process: ${((cpu.user + cpu.system) / N).toFixed(2)} µs per message`);
// publisher cost alone
const c1 = process.cpuUsage();
for (let i = 0; i < N; i++) { pub.publish(`other.${(i % 5000).toString(16).padStart(32, '0')}`, body, { headers: h }); if (i % 5000 === 0) await pub.flush(); }
await pub.flush();
const cpu1 = process.cpuUsage(c1);
console.log(`publisher alone: ${((cpu1.user + cpu1.system) / N).toFixed(2)} µs per message; receiving and dropping: ${(((cpu.user + cpu.system) - (cpu1.user + cpu1.system)) / N).toFixed(2)} µs`);
await pub.close(); await sub.close(); await nats.stop();
