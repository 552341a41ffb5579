import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { run, type RunResult } from './run.ts';

/** nats-server from PATH or /usr/sbin (where Debian puts it). */
export function natsServerBinary(): string {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    const candidate = join(dir, 'nats-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  assert.fail('nats-server is not installed (apt-get install -y nats-server): it checks the NATS configs');
}

/** The environment variables deploy/nats/auth.conf reads its passwords from. */
export const NATS_PASSWORD_VARS = ['NATS_GATEWAY_PASSWORD', 'NATS_PUBLISHER_PASSWORD', 'NATS_JETPULL_PASSWORD'] as const;

/**
 * `nats-server -c <file> -t`: the server's own parser and option checks, with test
 * passwords in the environment (`binary`: another release than the one on PATH).
 */
export const testNatsConf = (file: string, binary = natsServerBinary()): Promise<RunResult> =>
  run(binary, ['-c', file, '-t'], { ...process.env, ...Object.fromEntries(NATS_PASSWORD_VARS.map((v) => [v, `test${v.toLowerCase()}`])) });

export type NatsValue = string | string[];

/**
 * The settings of a NATS config as dotted keys ('jetstream.store_dir' → '/data'),
 * following `include`. Only the one-setting-a-line layout of deploy/nats is read,
 * and only after `nats-server -t` accepted the file; any other line fails the test
 * rather than being misread.
 */
export function readNatsConf(file: string): Map<string, NatsValue> {
  const out = new Map<string, NatsValue>();
  const set = (key: string, value: NatsValue, where: string): void => {
    assert.ok(!out.has(key), `${where}: ${key} is set twice`);
    out.set(key, value);
  };
  const blocks: string[] = [];
  let array: { key: string; items: string[] } | undefined;
  readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = withoutComment(raw).trim();
    if (line === '') return;
    if (array) {
      if (line === ']') {
        set(array.key, array.items, where);
        array = undefined;
      } else {
        array.items.push(unquote(line.replace(/,$/, '')));
      }
      return;
    }
    if (line === '}') {
      assert.ok(blocks.pop() !== undefined, `${where}: } without a block`);
      return;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*(?:[:=]\s*|\s+)(.+)$/.exec(line);
    assert.ok(m, `${where}: cannot read "${line}"`);
    const key = [...blocks, m[1]!].join('.');
    // A value may end in ; or , (NATS accepts both as separators).
    const value = m[2]!.trim().replace(/[;,]$/, '');
    if (m[1] === 'include') {
      for (const [k, v] of readNatsConf(resolve(dirname(file), unquote(value)))) set([...blocks, k].join('.'), v, where);
    } else if (value === '{') {
      blocks.push(m[1]!);
    } else if (value === '[') {
      array = { key, items: [] };
    } else if (/^\[.*\]$/.test(value)) {
      set(key, value.slice(1, -1).split(',').map((s) => unquote(s.trim())).filter(Boolean), where);
    } else {
      assert.ok(!/[{}[\]]/.test(value), `${where}: cannot read "${line}"`);
      set(key, unquote(value), where);
    }
  });
  assert.ok(blocks.length === 0 && array === undefined, `${file}: a block or array is not closed`);
  return out;
}

/** A comment starts with # or // at the start or after a blank, outside quotes. */
function withoutComment(line: string): string {
  for (const m of line.matchAll(/(^|\s)(#|\/\/)/g)) {
    if ((line.slice(0, m.index).match(/["']/g) ?? []).length % 2 === 0) return line.slice(0, m.index);
  }
  return line;
}

const unquote = (s: string): string => s.replace(/^(["'])(.*)\1$/, '$2');

/** A single value of a config read by readNatsConf. */
export function natsSetting(conf: Map<string, NatsValue>, key: string): string | undefined {
  const value = conf.get(key);
  assert.ok(value === undefined || typeof value === 'string', `${key} is not a single value`);
  return value;
}

export interface NatsSizes {
  maxPayload: number;
  maxFileStore: number;
}

const probed = new Map<string, Promise<NatsSizes>>();

/**
 * Byte counts of max_payload and jetstream.max_file_store as nats-server reads them
 * (NATS has its own suffix rules: 64M is 10^6 bytes, 64MB is 2^20). The values are
 * copied into a throw-away config run on free ports with a temporary store, and read
 * back from /varz; the deploy file itself cannot be started here, its store_dir is
 * /data on this machine.
 */
export function natsSizes(maxPayload: string | undefined, maxFileStore: string): Promise<NatsSizes> {
  const key = `${maxPayload}|${maxFileStore}`;
  let sizes = probed.get(key);
  if (!sizes) {
    sizes = probeSizes(maxPayload, maxFileStore);
    probed.set(key, sizes);
  }
  return sizes;
}

async function probeSizes(maxPayload: string | undefined, maxFileStore: string): Promise<NatsSizes> {
  const dir = mkdtempSync(join(tmpdir(), 'jetpull-nats-probe-'));
  const http = await freePort();
  const conf = join(dir, 'probe.conf');
  writeFileSync(conf, [
    'port: -1',
    `http: "127.0.0.1:${http}"`,
    ...(maxPayload === undefined ? [] : [`max_payload: ${maxPayload}`]),
    `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))}, max_file_store: ${maxFileStore} }`,
  ].join('\n'));
  const server = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((r) => server.once('exit', () => r()));
  try {
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
      if (server.exitCode !== null) break;
      const varz = await fetch(`http://127.0.0.1:${http}/varz`).then((r) => (r.ok ? r.json() : undefined), () => undefined);
      if (varz) {
        const v = varz as { max_payload: number; jetstream?: { config?: { max_storage: number } } };
        assert.ok(v.jetstream?.config, 'the probe server runs JetStream');
        return { maxPayload: v.max_payload, maxFileStore: v.jetstream.config.max_storage };
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`nats-server did not serve /varz for the size probe:\n${log}`);
  } finally {
    server.kill();
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
