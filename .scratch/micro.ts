// Read-strategy micro benchmark (scratch, not committed).
import { connect, headers } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import { startLocalNats } from '../src/nats/local-server.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = process.argv[2] ?? 'nats-server';
const C = Number(process.argv[3] ?? 1000), K = Number(process.argv[4] ?? 20);
const nats = await startLocalNats({ binary: bin, storeDir: mkdtempSync(join(tmpdir(), 'micro-')), port: -1 });
const nc = await connect({ servers: nats.url, noAsyncTraces: true });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
await jsm.streams.add({ name: 'S', subjects: ['push.msg.>'], storage: 'file' as never, allow_direct: true });
const ids = Array.from({ length: C }, (_, i) => `priv.${i.toString(16).padStart(32, '0')}`);
const body = new Uint8Array(200);
// One message each first (the mid), then K per channel, interleaved.
let p: Promise<unknown>[] = [];
const h = () => { const x = headers(); x.set('Jp-Expiry', '3600'); return x; };
for (const id of ids) p.push(js.publish(`push.msg.${id}`, body, { headers: h() }));
await Promise.all(p); p = [];
const mid = (await jsm.streams.info('S')).state.last_seq;
for (let k = 0; k < K; k++) { for (const id of ids) p.push(js.publish(`push.msg.${id}`, body, { headers: h() })); await Promise.all(p); p = []; }
const end = (await jsm.streams.info('S')).state.last_seq;
console.log(`${bin} stored ${end}, mid ${mid}`);

async function pool(n: number, conc: number, f: (i: number) => Promise<number>): Promise<number> {
  let next = 0, got = 0;
  await Promise.all(Array.from({ length: conc }, async () => { while (next < n) { const r = await f(next++); got += r; } }));
  return got;
}
async function time(label: string, f: () => Promise<number>) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const n = await f();
  const ms = performance.now() - t0; const cpu = process.cpuUsage(c0);
  console.log(`${label.padEnd(36)} ${ms.toFixed(0).padStart(6)} ms, got ${n}, client cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`);
}
for (const conc of [64, 256]) {
  await time(`last+next walk, conc ${conc}`, () => pool(C, conc, async (i) => {
    const s = `push.msg.${ids[i]}`;
    const last = await jsm.direct.getMessage('S', { last_by_subj: s });
    let n = 0; let seq = mid;
    while (last && seq < last.seq) { const m = await jsm.direct.getMessage('S', { seq: seq + 1, next_by_subj: s }); if (!m) break; seq = m.seq; n++; }
    return n;
  }));
}
try {
  for (const conc of [64, 256, 1000]) {
    await time(`batch get, conc ${conc}`, () => pool(C, conc, async (i) => {
      const s = `push.msg.${ids[i]}`;
      let n = 0;
      for await (const m of await jsm.direct.getBatch('S', { seq: mid + 1, next_by_subj: s, batch: 1000 })) { n++; void m; }
      return n;
    }));
  }
  await time(`last probe only, conc 256`, () => pool(C, 256, async (i) => ((await jsm.direct.getMessage('S', { last_by_subj: `push.msg.${ids[i]}` })) ? 1 : 0)));
} catch (e) { console.log('batch: ', String(e)); }
if (!bin.includes('2.15')) process.exit(0);
await time('ordered consumer scan', async () => {
  const consumer = await js.consumers.get('S', { filter_subjects: 'push.msg.>', deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: mid + 1 });
  let n = 0, last = mid;
  while (last < end) { const b = await consumer.fetch({ max_messages: 5000, expires: 2000 }); for await (const m of b) { n++; last = m.seq; void m.subject; void m.headers; } }
  await consumer.delete();
  return n;
});
await nc.close(); await nats.stop();
