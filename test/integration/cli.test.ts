import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJetpull, type CliRun } from '../helpers/cli.ts';
import { newUser, SPEC, TEST_KEY, type TestUser } from '../helpers/channels.ts';
import { longPoll } from '../helpers/long-poll-client.ts';
import { startTestNats, type TestNats } from '../helpers/nats-server.ts';
import { startOfficialClient } from '../helpers/official-client/index.ts';
import { freePort } from '../helpers/ports.ts';
import { spawnJetpull, type JetpullProcess } from '../helpers/process.ts';
import { backendRpcQuery } from '../helpers/pull-token.ts';
import { parseTextFrames } from '../helpers/text-frames.ts';
import { eventually } from '../helpers/wait.ts';
import { openWs } from '../helpers/ws-client.ts';

/**
 * Every `jetpull` command as a real child process against a real `jetpull serve` and
 * nats-server: the commands find the server from the same configuration it runs with.
 */

let nats: TestNats;
let server: JetpullProcess;
/** The configuration of the server, as environment variables, which every command is given too. */
let env: Record<string, string>;
const tmp = mkdtempSync(join(tmpdir(), 'jetpull-cli-'));
const fixture = (name: string): string => new URL(`../fixtures/${name}`, import.meta.url).pathname;

before(async () => {
  nats = await startTestNats();
  server = await spawnJetpull(nats.url, { PUSH_PROCESS_UNIQUE_ID: 'cli-serve' }, { args: ['serve'] });
  env = { NATS_URL: nats.url, PUSH_PORT: String(server.port), PUSH_HOSTNAME: '127.0.0.1', PUSH_SECURITY__KEY: TEST_KEY };
});
after(async () => {
  await server?.stop();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

const jetpull = (args: string[], extraEnv: Record<string, string> = {}, input?: string): Promise<CliRun> => runJetpull(args, { ...env, ...extraEnv }, input);
const message = (n: string): string => JSON.stringify({ module_id: 'test', command: 'cli', params: { n } });

/** Every message stored for the user after `mid`, by its `n`. */
async function storedAfter(user: TestUser, mid: string): Promise<string[]> {
  const res = await longPoll(`${server.base}/bitrix/sub/?CHANNEL_ID=${user.token}&mid=${mid}`).result;
  return parseTextFrames(res.body.toString()).map((f) => (f.text as { params: { n: string } }).params.n);
}

/** Publishes over NATS through the CLI; the mids it printed. */
async function publishNats(channel: string, n: string, extra: string[] = []): Promise<string[]> {
  const run = await jetpull(['publish', '--via', 'nats', '--channel', channel, '--body', message(n), '--expiry', '3600', ...extra]);
  assert.equal(run.code, 0, run.stderr);
  return [...run.stdout.matchAll(/^mid (\d{26})$/gm)].map((m) => m[1]!);
}

describe('jetpull: help and usage', () => {
  it('--help lists every command and the exit codes; each command has its own --help', async () => {
    const top = await jetpull(['--help']);
    assert.equal(top.code, 0);
    for (const name of ['serve', 'sign', 'publish', 'stat', 'config', 'check']) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'));
    for (const code of ['0', '1', '2', '3']) assert.match(top.stdout, new RegExp(`^  ${code}  `, 'm'));
    const commands = [['serve'], ['sign'], ['publish'], ['stat'], ['config', 'portal'], ['config', 'client'], ['check']];
    const runs = await Promise.all(commands.map((args) => jetpull([...args, '--help'])));
    for (const [i, args] of commands.entries()) {
      const run = runs[i]!;
      assert.equal(run.code, 0, `${args.join(' ')} --help: ${run.stderr}`);
      assert.match(run.stdout, new RegExp(`^Usage: jetpull ${args.join(' ')}`), args.join(' '));
      assert.match(run.stdout, /Exit codes/, `${args.join(' ')} --help documents its exit codes`);
    }
  });

  it('usage errors exit 2 and say what to do', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"\n {2}the commands are serve, sign/],
      [['sign', '--frob', SPEC.priv], /Unknown option '--frob'\n {2}see jetpull sign --help/],
      [['publish', '--channel', SPEC.priv], /--body is required\n {2}give the message as JSON/],
      [['publish', '--channel', SPEC.priv, '--body', '{"x":1}'], /no "module_id" and "command"[^\n]*\n {2}give \{"module_id"/],
      [['publish', '--channel', SPEC.priv, '--body', message('x'), '--via', 'smoke'], /--via takes http or nats/],
      [['config'], /Usage: jetpull config <portal\|client>/],
      [['config', 'client'], /the user id is missing/],
      [['serve', '--role', 'boss'], /--role takes all, gateway, publisher, got "boss"/],
    ];
    const runs = await Promise.all(cases.map(([args]) => jetpull(args)));
    for (const [i, [args, pattern]] of cases.entries()) {
      const run = runs[i]!;
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, pattern, args.join(' '));
    }
  });
});

describe('jetpull serve', () => {
  it('runs the server with every route: the process the other tests talk to', async () => {
    const ready = await fetch(`${server.adminBase}/readyz`);
    assert.equal(ready.status, 200);
    const stat = (await (await fetch(`${server.base}/server-stat/`)).json()) as Array<{ processUniqueId: string }>;
    assert.ok(stat.some((s) => s.processUniqueId === 'cli-serve'));
  });

  it('--role wins over the environment; --config reads a file', async () => {
    const file = join(tmp, 'serve.json');
    writeFileSync(file, JSON.stringify({ processUniqueId: 'from-file', jetpull: { role: 'all' } }));
    const pub = await spawnJetpull(nats.url, { PUSH_ROLE: 'gateway' }, { args: ['serve', '--role', 'publisher', '--config', file] });
    try {
      const metrics = await (await fetch(`${pub.adminBase}/metrics`)).text();
      assert.match(metrics, /role="publisher"/);
      assert.match(metrics, /process="from-file"/);
      const poll = await fetch(`${pub.base}/bitrix/sub/?CHANNEL_ID=${newUser().token}`);
      assert.equal(poll.status, 404, 'a publisher serves no subscriptions');
    } finally {
      await pub.stop();
    }
    assert.equal(await pub.exited, 0, 'SIGTERM drains and exits 0');
  });

  it('an invalid configuration exits 2 with every problem, with a command or without', async () => {
    for (const args of [['serve'], []]) {
      const run = await jetpull(args, { PUSH_GATEWAY__COALESCE_WINDOW_MS: 'soon', PUSH_PORT: String(await freePort()) });
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /gateway\.coalesceWindowMs \(env PUSH_GATEWAY__COALESCE_WINDOW_MS\)/);
    }
  });
});

describe('jetpull sign', () => {
  it('signs ids with the configured key (the spec test vector)', async () => {
    const run = await jetpull(['sign', SPEC.shared, `${SPEC.priv}:${SPEC.pub}`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${SPEC.shared}.${SPEC.sharedSig}\n${SPEC.priv}:${SPEC.pub}.${SPEC.privPubSig}\n`);
    const pub = await jetpull(['sign', '--public', SPEC.pub]);
    assert.equal(pub.stdout, `${SPEC.pub}.${SPEC.publicSig}\n`);
    const json = JSON.parse((await jetpull(['sign', '--json', `${SPEC.priv}:${SPEC.pub}`])).stdout) as Array<Record<string, string>>;
    assert.deepEqual(json, [{ channel: `${SPEC.priv}:${SPEC.pub}`, signed: `${SPEC.priv}:${SPEC.pub}.${SPEC.privPubSig}`, publicAddress: `${SPEC.pub}.${SPEC.publicSig}` }]);
  });

  it('--token makes a version 5 token the server accepts: the user gets what the portal publishes to it over /bitrix/api/', async () => {
    const run = await jetpull(['sign', '--token', '--host', 'cli-host', '--user', '77', SPEC.shared]);
    assert.equal(run.code, 0, run.stderr);
    const token = run.stdout.trim();
    const [head, claims] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
    assert.deepEqual(head, { typ: 'JWT', alg: 'HS256' });
    assert.deepEqual([claims!.iss, claims!.sub, claims!.chan, Number(claims!.exp) - Number(claims!.iat)], ['cli-host', '77', SPEC.shared, 43_200]);
    const ws = await openWs(`${server.wsBase}/bitrix/subws/?token=${encodeURIComponent(token)}&jsonRpc=true`);
    try {
      const body = JSON.stringify({ jsonrpc: '2.0', method: 'publish', params: { userList: [77], body: { module_id: 't', command: 'c', params: { n: 1 } } } });
      const res = await fetch(`${server.base}/bitrix/api/?${backendRpcQuery(body, 'cli-host')}`, { method: 'POST', body });
      assert.equal(res.status, 200, await res.text());
      // Text frames besides the message are protocol 5's `ping`s (every 10 s, one may come first).
      const messages = (): Array<{ params: { body: { params: { n: number } } } }> =>
        ws.frames.map((f) => f.data.toString()).filter((d) => d !== 'ping').map((d) => JSON.parse(d) as { params: { body: { params: { n: number } } } });
      await eventually('delivered to user 77', () => messages().length > 0);
      assert.equal(messages()[0]!.params.body.params.n, 1);
    } finally {
      ws.close();
    }
    const usage = await jetpull(['sign', '--token', '--user', '77']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--token needs --host/);
  });

  it('refuses ids that are not 32 lowercase hex, and works only with a key', async () => {
    const upper = await jetpull(['sign', SPEC.priv.toUpperCase()]);
    assert.equal(upper.code, 2);
    assert.match(upper.stderr, /ids are lowercase/);
    const noKey = await runJetpull(['sign', SPEC.priv]);
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /no security key is configured\n {2}set PUSH_SECURITY__KEY/);
  });
});

describe('jetpull publish', () => {
  it('publishes over HTTP, stored and delivered; the body may come from standard input', async () => {
    const user = newUser();
    const [start] = await publishNats(user.priv, 'start');
    const run = await jetpull(['publish', '--channel', user.priv, '--body', message('http'), '--expiry', '3600']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^stored for 1 channel\(s\) via http in 1 attempt\(s\), idempotency key [0-9a-f-]{36}$/m);
    const piped = await jetpull(['publish', '--channel', user.priv, '--body', '-', '--expiry', '3600'], {}, message('stdin'));
    assert.equal(piped.code, 0, piped.stderr);
    assert.deepEqual(await storedAfter(user, start!), ['http', 'stdin']);
  });

  it('publishes over NATS, printing one mid per receiver', async () => {
    const user = newUser();
    const [start] = await publishNats(user.priv, 'start');
    const mids = await publishNats(user.token, 'nats');
    assert.equal(mids.length, 2, 'priv:pub.sig is the private and the public id');
    assert.deepEqual(await storedAfter(user, start!), ['nats']);
  });

  it('a refusal exits 3 at once; an unreachable server exits 1 with the key to publish again with', async () => {
    const user = newUser();
    const key = randomUUID();
    await publishNats(user.priv, 'first', ['--idempotency-key', key]);
    const refused = await jetpull(['publish', '--channel', user.priv, '--body', message('other'), '--idempotency-key', key]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /refused \(PUSH_ERR_IDEMPOTENCY_CONFLICT\)/);
    assert.doesNotMatch(refused.stderr, /retrying/);
    const port = await freePort();
    const away = await jetpull(['publish', '--channel', user.priv, '--body', message('x'), '--url', `http://127.0.0.1:${port}`, '--attempts', '2']);
    assert.equal(away.code, 1, away.stderr);
    assert.match(away.stderr, /attempt 1 failed \(cannot reach/);
    assert.match(away.stderr, /not confirmed as stored \(PUSH_ERR_CLIENT_UNREACHABLE\)[^\n]*\n {2}publish again with --idempotency-key [0-9a-f-]{36}/);
  });
});

describe('jetpull stat', () => {
  it('shows the running process and which channels are online', async () => {
    const online = newUser();
    const offline = newUser();
    const ws = await openWs(`${server.wsBase}/bitrix/subws/?CHANNEL_ID=${online.token}`);
    try {
      const run = await eventually('the channel online in stat', async () => {
        const r = await jetpull(['stat', '--channel', online.priv, '--channel', offline.priv]);
        return r.code === 0 && new RegExp(`^${online.priv}  yes$`, 'm').test(r.stdout) ? r : undefined;
      }, 15_000, 200);
      assert.match(run.stdout, /^PROCESS +PID +AGE_S +WEBSOCKETS +POLLINGS +CHANNELS +MESSAGES_TODAY/m);
      assert.match(run.stdout, new RegExp(`^cli-serve +${server.child.pid} `, 'm'));
      assert.match(run.stdout, new RegExp(`^${offline.priv}  no$`, 'm'));
      const json = JSON.parse((await jetpull(['stat', '--json'])).stdout) as { servers: Array<{ processUniqueId: string; websockets: number }> };
      assert.ok(json.servers.find((s) => s.processUniqueId === 'cli-serve')!.websockets >= 1);
    } finally {
      ws.close();
    }
  });

  it('says what to do when the server cannot be reached', async () => {
    const run = await jetpull(['stat'], { PUSH_PORT: String(await freePort()) });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+ for server stats: ECONNREFUSED\n {2}is jetpull running there/);
  });
});

describe('jetpull config', () => {
  it('portal: the pull module options for this server', async () => {
    const run = await jetpull(['config', 'portal', '--format', 'json', '--domain', 'portal.example.com']);
    assert.equal(run.code, 0, run.stderr);
    const options = JSON.parse(run.stdout) as Record<string, string>;
    assert.equal(options.path_to_publish, `http://127.0.0.1:${server.port}/bitrix/pub/`);
    assert.equal(options.path_to_websocket_secure, 'wss://portal.example.com/bitrix/subws/');
    assert.equal(options.path_to_modern_listener, 'http://portal.example.com/bitrix/sub/');
    assert.equal(options.path_to_publish_web_secure, 'https://portal.example.com/bitrix/rest/');
    assert.equal(options.nginx_version, '4');
    assert.equal(options.path_to_json_rpc, `http://127.0.0.1:${server.port}/bitrix/api/`);
    assert.equal(options.signature_key, TEST_KEY);
    assert.equal(options.signature_algo, 'sha1');
    const php = await jetpull(['config', 'portal', '--format', 'php']);
    assert.match(php.stdout, /^'pull' => \[\n {2}'value' => \[\n {4}'path_to_listener' => 'http:\/\/#DOMAIN#\/bitrix\/sub\/',$/m);
  });

  it('client: a config the official client connects with; the user\'s private id receives what is published to it', async () => {
    const run = await jetpull(['config', 'client', '42', '--domain', `127.0.0.1:${server.port}`]);
    assert.equal(run.code, 0, run.stderr);
    const config = JSON.parse(run.stdout);
    const again = JSON.parse((await jetpull(['config', 'client', '42'])).stdout);
    assert.equal(again.channels.private.id, config.channels.private.id, 'the ids of a user are the same every time');
    const [priv, pub] = (config.channels.private.id as string).split('.')[0]!.split(':') as [string, string];
    const user: TestUser = { priv, pub, token: config.channels.private.id, publicAddress: config.channels.private.public_id };
    const client = await startOfficialClient({ base: server.base, wsBase: server.wsBase, user, config });
    try {
      const published = await jetpull(['publish', '--channel', priv, '--body', JSON.stringify({ module_id: 'application', command: 'hello', params: { from: 'cli' } })]);
      assert.equal(published.code, 0, published.stderr);
      const [event] = await client.waitForEvents(1);
      assert.equal(event!.command, 'hello');
      assert.deepEqual(event!.params, { from: 'cli' });
      assert.equal(client.connections[0]!.url.includes('binaryMode=true'), true, 'version 4: protobuf');
    } finally {
      await client.stop();
    }
  });
});

describe('jetpull check', () => {
  it('accepts the BitrixVM files, noting the keys jetpull ignores', async () => {
    for (const name of ['push-server-sub-8010.json', 'push-server-pub-9010.json']) {
      const run = await jetpull(['check', fixture(name)]);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /: ok \(role (all|publisher); 127\.0\.0\.1:(8010|9010) /);
      assert.match(run.stdout, /storage\.type: ignored: jetpull keeps messages in NATS JetStream/);
    }
  });

  it('reports every problem of a bad file with its path in the file and the fix, and exits 2', async () => {
    const file = join(tmp, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        servers: [{ port: 8010, routes: { sub: 'bitrix/subws/' } }],
        storage: { messageTLL: 'a day', streamReplicas: 3 },
        limits: { maxPayloadd: 5 },
        gateway: { longPollTimeoutMs: 1000 },
        jetpull: { role: 'gatway', gateway: { pingIntervalMS: 3 } },
      }),
    );
    const run = await jetpull(['check', file]);
    assert.equal(run.code, 2, run.stdout);
    const expected: Array<[string, RegExp]> = [
      ['storage.messageTLL', /write a whole number/],
      ['storage.streamReplicas', /move it to jetpull\.storage\.streamReplicas/],
      ['limits.maxPayloadd', /did you mean limits\.maxPayload\?/],
      ['gateway', /move it to jetpull\.gateway/],
      ['jetpull.role', /use one of: "all", "gateway", "publisher"/],
      ['jetpull.gateway.pingIntervalMS', /did you mean "pingIntervalMs"\?/],
      ['servers.0.routes.sub', /start it with "\/"/],
    ];
    for (const [path, fix] of expected) {
      const block = new RegExp(`^  ${path.replace(/\./g, '\\.')}: [^\\n]+\\n {4}fix: ([^\\n]+)$`, 'm').exec(run.stdout);
      assert.ok(block, `${path} is reported:\n${run.stdout}`);
      assert.match(block[1]!, fix, path);
    }
    assert.match(run.stdout, new RegExp(`: ${expected.length} problem\\(s\\)`));
    const json = JSON.parse((await jetpull(['check', '--json', file])).stdout) as { ok: boolean; problems: Array<{ path: string; fix: string }> };
    assert.equal(json.ok, false);
    assert.deepEqual(json.problems.map((p) => p.path).sort(), expected.map(([p]) => p).sort());
  });

  it('reports rules across settings and unreadable files', async () => {
    const file = join(tmp, 'cross.json');
    writeFileSync(file, JSON.stringify({ security: { key: 'k', algo: 'sha999' }, jetpull: { gateway: { coalesceWindowMs: 50_000 } } }));
    const run = await jetpull(['check', file]);
    assert.equal(run.code, 2);
    assert.match(run.stdout, /^ {2}security\.algo: "sha999" is not a hash[^\n]*\n {4}fix: use the pull module's signature_algo/m);
    assert.match(run.stdout, /^ {2}jetpull\.gateway\.coalesceWindowMs: must be shorter[^\n]*\n {4}fix: lower it below 40000/m);
    const broken = join(tmp, 'broken.json');
    writeFileSync(broken, '{"servers": [],}');
    const unreadable = await jetpull(['check', broken]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stdout, /cannot be read as JSON[^\n]*\n {4}fix: fix the JSON syntax/);
    const list = join(tmp, 'list.json');
    writeFileSync(list, '[1]');
    const notObject = await jetpull(['check', list]);
    assert.equal(notObject.code, 2);
    assert.match(notObject.stdout, /\(file\): not a JSON object\n {4}fix: a config file holds one object/);
    const missing = await jetpull(['check', join(tmp, 'missing.json')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stdout, /fix: check the path/);
  });
});

describe('jetpull publish and stat against signed publishing', () => {
  it('sign the pub route requests with the configured key; without a key the server refuses (exit 3, 4026)', async () => {
    const signed = await spawnJetpull(nats.url, { PUSH_PROCESS_UNIQUE_ID: 'cli-signed', PUSH_SECURITY__SIGNED_PUBLISHING: 'required' }, { args: ['serve'] });
    try {
      const signedEnv = { PUSH_PORT: String(signed.port), PUSH_SECURITY__SIGNED_PUBLISHING: 'required' };
      const user = newUser();
      const [start] = await publishNats(user.priv, 'start');
      const run = await jetpull(['publish', '--channel', user.priv, '--body', message('signed'), '--expiry', '3600'], signedEnv);
      assert.equal(run.code, 0, run.stderr);
      const { PUSH_SECURITY__KEY: _key, ...noKey } = env;
      const unsigned = await runJetpull(['publish', '--channel', user.priv, '--body', message('unsigned'), '--expiry', '3600'], { ...noKey, PUSH_PORT: String(signed.port) });
      assert.equal(unsigned.code, 3, unsigned.stderr);
      assert.match(unsigned.stderr, /4026: Wrong request signature\./);
      assert.deepEqual(await storedAfter(user, start!), ['signed']);
      const ws = await openWs(`${signed.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}`);
      try {
        await eventually('the channel online in a signed stat', async () => {
          const r = await jetpull(['stat', '--channel', user.priv], signedEnv);
          return r.code === 0 && new RegExp(`^${user.priv}  yes$`, 'm').test(r.stdout);
        }, 15_000, 200);
      } finally {
        ws.close();
      }
    } finally {
      await signed.stop();
    }
  });
});
