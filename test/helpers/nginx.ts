import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.ts';
import { eventually } from './wait.ts';

const CONF = fileURLToPath(new URL('../../deploy/nginx/nginx.conf', import.meta.url));

export interface TestNginx {
  /** http://127.0.0.1:<port> */
  readonly base: string;
  readonly wsBase: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** The text of the first block that starts with `head` in an nginx config, braces balanced. */
export function nginxBlock(conf: string, head: string): string {
  const start = conf.indexOf(`${head} {`);
  if (start < 0) throw new Error(`no "${head}" block in ${CONF}`);
  let depth = 0;
  for (let i = conf.indexOf('{', start); i < conf.length; i++) {
    if (conf[i] === '{') depth++;
    else if (conf[i] === '}' && --depth === 0) return conf.slice(start, i + 1);
  }
  throw new Error(`unbalanced "${head}" block in ${CONF}`);
}

/**
 * The real nginx (from PATH or /usr/sbin) with the subscription locations of
 * deploy/nginx/nginx.conf, copied as they are, in front of one jetpull listener on
 * 127.0.0.1: what the compose stack's nginx does for /bitrix/subws/ and /bitrix/sub/,
 * without Docker. Its files live in a temporary directory.
 */
export async function startNginx(upstreamPort: number): Promise<TestNginx> {
  const conf = readFileSync(CONF, 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'jetpull-nginx-'));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'master_process off;',
      `error_log ${dir}/error.log warn;`,
      `pid ${dir}/nginx.pid;`,
      'events { worker_connections 512; }',
      'http {',
      '  access_log off;',
      ...['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((d) => `  ${d === 'body' ? 'client_body' : d}_temp_path ${dir}/${d};`),
      nginxBlock(conf, 'map $http_upgrade $connection_upgrade'),
      `  upstream jetpull_gateways { server 127.0.0.1:${upstreamPort}; keepalive 8; }`,
      `  server {`,
      `    listen 127.0.0.1:${port};`,
      nginxBlock(conf, 'location /bitrix/subws/'),
      nginxBlock(conf, 'location /bitrix/sub/'),
      '  }',
      '}',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(nginxBinary(), ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await eventually(`nginx listening on ${port} (${stderr})`, () => child.exitCode === null && accepts(port), 10_000, 50);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    port,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function nginxBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    try {
      accessSync(join(dir, 'nginx'), constants.X_OK);
      return join(dir, 'nginx');
    } catch {
      // not here
    }
  }
  throw new Error('nginx is not installed (apt-get install -y nginx): the nginx tests run the real one');
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
