import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Script } from 'node:vm';
import { run } from './run.ts';

/** The inline `node -e` script of an exec-form healthcheck (['CMD', 'node', '-e', script]). */
export function nodeScript(argv: readonly string[], what: string): string {
  const start = argv[0] === 'CMD' ? 1 : 0;
  assert.deepEqual(argv.slice(start, start + 2), ['node', '-e'], `${what}: healthcheck is node -e <script> (the image has no curl)`);
  const script = argv[start + 2];
  assert.ok(script, `${what}: node -e without a script`);
  assert.doesNotThrow(() => new Script(script), `${what}: the healthcheck script is valid JavaScript`);
  return script;
}

export interface HttpTarget {
  host: string;
  port: number;
  path: string;
}

/**
 * The request a healthcheck script makes under the given environment, captured by
 * running it against a stand-in `http` module: no network, and the defaults it falls
 * back to become visible.
 */
export function healthcheckRequest(script: string, env: Record<string, string>): HttpTarget {
  let target: HttpTarget | undefined;
  const request = (options: string | URL | { host?: string; hostname?: string; port?: number | string; path?: string }): unknown => {
    if (typeof options === 'string' || options instanceof URL) {
      const url = new URL(String(options));
      target = { host: url.hostname, port: Number(url.port || 80), path: url.pathname + url.search };
    } else {
      target = { host: options.host ?? options.hostname ?? 'localhost', port: Number(options.port ?? 80), path: options.path ?? '/' };
    }
    const chain = { on: () => chain, end: () => chain, setTimeout: () => chain };
    return chain;
  };
  const http = { get: request, request };
  const context = {
    require: (id: string) => {
      assert.ok(id === 'http' || id === 'node:http', `the healthcheck requires ${id}; only http is stubbed`);
      return http;
    },
    process: { env, exit: () => undefined },
  };
  new Script(script).runInNewContext(context, { timeout: 1000 });
  assert.ok(target, 'the healthcheck makes an HTTP request');
  return target;
}

/**
 * Runs a healthcheck script in a real node process against a stand-in admin listener
 * answering /readyz with `status` (undefined: nothing listens). Returns its exit code.
 */
export async function runHealthcheck(script: string, status: number | undefined): Promise<number> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(req.url === '/readyz' ? status ?? 500 : 404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  if (status === undefined) await new Promise<void>((r) => server.close(() => r()));
  try {
    const { code } = await run(process.execPath, ['-e', script], { ...process.env, PUSH_ADMIN__PORT: String(port) });
    if (status !== undefined) assert.deepEqual(paths, ['/readyz'], 'the healthcheck asks /readyz');
    return code;
  } finally {
    if (status !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }
}

/** The healthcheck asks the node's monitoring port whether JetStream is up. */
export function assertJetStreamHealthcheck(argv: string[], monitoringPort: string | undefined, name: string): void {
  const found = /https?:\/\/[^\s'"]+/.exec(argv.join(' '));
  assert.ok(found, `${name}: the healthcheck asks an HTTP URL (${argv.join(' ')})`);
  const url = new URL(found[0]);
  assert.equal(url.port, monitoringPort, `${name}: the healthcheck asks the monitoring port`);
  assert.equal(url.pathname, '/healthz', `${name}: the healthcheck asks /healthz`);
  assert.equal(url.searchParams.get('js-enabled-only'), 'true', `${name}: the healthcheck waits for JetStream`);
}
