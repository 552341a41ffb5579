import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { newUser } from '../helpers/channels.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnJetpull, type JetpullProcess } from '../helpers/process.ts';
import { eventually, within } from '../helpers/wait.ts';

/**
 * HTTPS and WSS from `servers[].ssl` (Push server 2.0's listener option), and SIGHUP
 * reading renewed certificate files: new connections get the new certificate, open
 * ones stay, and files that do not fit leave the current certificate in use.
 */

const HELLO = '{"module_id":"t","command":"hello","params":{}}';

let dir: string;
let nats: TestNats;
let jp: JetpullProcess;
let port: number;

/** A self-signed certificate for 127.0.0.1 with the given common name. */
function makeCert(name: string): { key: string; cert: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { key, cert };
}

/** Installs a certificate at the paths the listener reads. */
function install(c: { key: string; cert: string }): void {
  copyFileSync(c.key, join(dir, 'live.key'));
  copyFileSync(c.cert, join(dir, 'live.pem'));
}

/** The common name of the certificate a new TLS connection is given. */
function servedName(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = s.getPeerCertificate().subject?.CN;
      s.end();
      resolve(String(cn));
    });
    s.on('error', reject);
  });
}

function httpsPost(path: string, body: string, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function httpsPoll(path: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jetpull-tls-'));
  install(makeCert('first'));
  nats = await startTestNats();
  port = await freePort();
  const servers = [{ port, hostname: '127.0.0.1', ssl: { key: join(dir, 'live.key'), cert: join(dir, 'live.pem') } }];
  jp = await spawnJetpull(nats.url, { PUSH_SERVERS: JSON.stringify(servers) });
});
after(async () => {
  await jp?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS listener', () => {
  it('serves long polling, WebSocket and publishing over TLS, and SIGHUP swaps the certificate without dropping anyone', async () => {
    const first = readFileSync(join(dir, 'first.pem'));
    assert.equal(await servedName(), 'first');

    const user = newUser();
    const poll = httpsPoll(`/bitrix/sub/?CHANNEL_ID=${user.token}`, first);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/bitrix/subws/?CHANNEL_ID=${user.token}`, { ca: first });
    const frames: string[] = [];
    ws.on('message', (d: Buffer) => frames.push(d.toString('utf8')));
    await within('wss open', new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(await httpsPost(`/bitrix/pub/?CHANNEL_ID=${user.priv}`, HELLO, first), 200);
    const answered = await within('https long poll', poll, 5_000);
    assert.equal(answered.status, 200);
    assert.match(answered.body, /"command":"hello"/);
    await eventually('wss delivery', () => frames.length === 1, 5_000);

    const second = makeCert('second');
    install(second);
    jp.kill('SIGHUP');
    await eventually('reload logged', () => jp.logs.some((l) => l.msg === 'tls certificate reloaded'), 5_000);
    assert.equal(await servedName(), 'second');
    const secondCa = readFileSync(second.cert);
    // The socket opened with the first certificate is still there and still served.
    assert.equal(await httpsPost(`/bitrix/pub/?CHANNEL_ID=${user.priv}`, HELLO, secondCa), 200);
    await eventually('wss delivery after the reload', () => frames.length === 2, 5_000);
    assert.equal(ws.readyState, WebSocket.OPEN);

    // A key that does not belong to the certificate: refused, the current one stays.
    copyFileSync(join(dir, 'first.key'), join(dir, 'live.key'));
    writeFileSync(join(dir, 'live.pem'), readFileSync(second.cert));
    jp.kill('SIGHUP');
    await eventually('failed reload logged', () => jp.logs.some((l) => l.msg === 'tls certificate reload failed, the previous one stays in use'), 5_000);
    assert.equal(await servedName(), 'second');
    assert.equal(jp.child.exitCode, null);
    ws.close();
  });
});
