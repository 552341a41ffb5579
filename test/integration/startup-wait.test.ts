import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startLocalNats, type LocalNats } from '../../src/nats/local-server.ts';
import { startTestApp } from '../helpers/app.ts';
import { publishText } from '../helpers/backend.ts';
import { newUser } from '../helpers/channels.ts';
import { freePort } from '../helpers/ports.ts';
import { eventually } from '../helpers/wait.ts';

/**
 * A process that starts before NATS, or before a cluster has formed, waits for it
 * (not ready, saying why, retrying) instead of exiting: compose starts everything at
 * once and a crash loop would never settle.
 */

const started: Array<{ stop(): Promise<void> }> = [];
const dirs: string[] = [];
after(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const storeDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'jetpull-wait-'));
  dirs.push(d);
  return d;
};

async function readyz(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return res === undefined ? 'unreachable' : `${res.status} ${(await res.text()).trim()}`;
}

describe('start-up before NATS is there', () => {
  it('waits for a NATS server that comes up later, not ready meanwhile, then serves', async () => {
    const natsPort = await freePort();
    const adminPort = await freePort();
    const app = startTestApp(`nats://127.0.0.1:${natsPort}`, { admin: { port: adminPort } });
    app.then((a) => started.push(a), () => undefined);
    await eventually('readiness to say it waits for NATS', async () => (await readyz(adminPort)) === '503 starting: nats not reachable', 10_000, 100);
    const nats: LocalNats = await startLocalNats({ storeDir: storeDir(), port: natsPort });
    started.push(nats);
    const t = await app;
    await eventually('ready', async () => (await readyz(adminPort)) === '200 ready', 10_000, 100);
    assert.equal((await publishText(t.base, newUser().priv, '{"n":1}', 60)).status, 200);
    assert.ok(t.logs.find('nats not reachable, retrying').length >= 1);
  });

  it('waits for a 3-node cluster that forms after it started (R3 streams cannot be placed before)', async () => {
    const routePorts = await Promise.all([freePort(), freePort(), freePort()]);
    const clientPorts = await Promise.all([freePort(), freePort(), freePort()]);
    const routes = routePorts.map((p) => `nats-route://127.0.0.1:${p}`).join(', ');
    const node = (i: number): Promise<LocalNats> =>
      startLocalNats({
        storeDir: storeDir(),
        port: clientPorts[i]!,
        extraConfig: `server_name: n${i + 1}\ncluster {\n  name: wait-test\n  listen: 127.0.0.1:${routePorts[i]}\n  routes: [${routes}]\n}\n`,
      });
    started.push(await node(0));
    const adminPort = await freePort();
    const app = startTestApp(`nats://127.0.0.1:${clientPorts[0]}`, { admin: { port: adminPort }, storage: { streamReplicas: 3 } });
    app.then((a) => started.push(a), () => undefined);
    await eventually('readiness to say it waits for JetStream', async () => (await readyz(adminPort)).startsWith('503 starting: '), 10_000, 100);
    await new Promise((r) => setTimeout(r, 2_000));
    started.push(await node(1), await node(2));
    const t = await app;
    await eventually('ready', async () => (await readyz(adminPort)) === '200 ready', 30_000, 200);
    assert.equal((await publishText(t.base, newUser().priv, '{"n":1}', 60)).status, 200);
  });
});
