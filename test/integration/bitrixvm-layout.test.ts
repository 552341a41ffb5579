import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PORT_OFFSET } from '../../src/config/schema.ts';
import { publishText } from '../helpers/backend.ts';
import { sign } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnJetpull, spawnJetpullWithConfig, type JetpullProcess } from '../helpers/process.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * The BitrixVM layout: one process per Push server 2.0 config file (6 sub + 2 pub)
 * on one host, started with nothing but `--config <file>` and NATS_URL. Every one
 * starts beside the others (its own admin port, derived from its listener) and serves.
 */

const KEY = 'Aq9y2fQ0bgvPcsE6xR7uLtK3mWz1HnJd';
const FIXTURES = new URL('../fixtures/', import.meta.url);
let nats: TestNats;
let dir: string;
const procs: JetpullProcess[] = [];
let subs: JetpullProcess[] = [];
let pubs: JetpullProcess[] = [];

const isFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A free listener port whose derived admin port is free too. */
async function listenerPort(): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (p + ADMIN_PORT_OFFSET <= 65_535 && (await isFree(p + ADMIN_PORT_OFFSET))) return p;
  }
}

/** One config file shaped as BitrixVM writes them, on the given port. */
function configFile(kind: 'sub' | 'pub', port: number): string {
  const template = JSON.parse(readFileSync(new URL(`push-server-${kind}-${kind === 'sub' ? 8010 : 9010}.json`, FIXTURES), 'utf8'));
  template.servers[0].port = port;
  template.servers[0].name = `push-${kind}-${port}`;
  template.processUniqueId = `push-${kind}-${port}`;
  template.security = { key: KEY };
  const file = join(dir, `push-server-${kind}-${port}.json`);
  writeFileSync(file, JSON.stringify(template, null, 2));
  return file;
}

before(async () => {
  nats = await startTestNats();
  dir = mkdtempSync(join(tmpdir(), 'jetpull-bitrixvm-'));
  const ports = { sub: [] as number[], pub: [] as number[] };
  for (let i = 0; i < 6; i++) ports.sub.push(await listenerPort());
  for (let i = 0; i < 2; i++) ports.pub.push(await listenerPort());
  subs = await Promise.all(ports.sub.map((p) => spawnJetpullWithConfig(nats.url, configFile('sub', p), p, p + ADMIN_PORT_OFFSET)));
  pubs = await Promise.all(ports.pub.map((p) => spawnJetpullWithConfig(nats.url, configFile('pub', p), p, p + ADMIN_PORT_OFFSET)));
  procs.push(...subs, ...pubs);
});
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('BitrixVM layout on one host', () => {
  it('all eight processes run side by side, each ready on its own admin port, listed in /server-stat/', async () => {
    for (const p of procs) assert.equal((await fetch(`${p.adminBase}/readyz`)).status, 200);
    const stats = await eventually('every process in /server-stat/', async () => {
      const list = (await (await fetch(`${pubs[0]!.base}/server-stat/`)).json()) as Array<{ processUniqueId: string }>;
      return list.length >= 8 ? list : undefined;
    }, 10_000, 200);
    assert.equal(new Set(stats.map((s) => s.processUniqueId)).size, 8);
  });

  it('a message published on a pub process reaches clients on every sub process', async () => {
    const priv = 'c4ca4238a0b923820dcc509a6f75849b';
    const token = `${priv}.${sign(priv, KEY)}`;
    const clients = await Promise.all(subs.map((s) => openWs(`${s.wsBase}/bitrix/subws/?CHANNEL_ID=${token}`)));
    assert.equal((await publishText(pubs[1]!.base, priv, '{"module_id":"t","command":"hello","params":{}}', 60)).status, 200);
    for (const c of clients) {
      await c.waitFrames(1);
      assert.equal(parseTextFrames(c.text()).length, 1);
      c.close();
    }
  });

  it('a second process on a taken admin port stops at once, naming the setting to change', async () => {
    const taken = subs[0]!.adminBase.split(':').at(-1)!;
    const second = spawnJetpull(nats.url, { PUSH_ADMIN__PORT: taken });
    await assert.rejects(second, /exited with 1.*admin\.port \(PUSH_ADMIN__PORT\)/s);
  });
});
