import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load.ts';
import { DEFAULT_ROUTES, type Config, type RouteName } from '../config/schema.ts';
import { CliError, ExitCode } from './errors.ts';
import type { CliIo } from './io.ts';

/**
 * What the client commands (sign, publish, stat, config) know of the server: its own
 * configuration, from the environment and `--config`, as `jetpull serve` reads it.
 */
export function commandConfig(io: CliIo, configFile: string | undefined): Config {
  try {
    return loadConfig({ argv: configFile === undefined ? [] : ['--config', configFile], env: io.env }).config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new CliError(ExitCode.Usage, err.message, `fix the configuration (jetpull check <file> names each problem in a file and its fix)`, { cause: err });
  }
}

/**
 * Where to reach a route: under `--url <base>` if given (with the configured path),
 * else on the first listener that serves it (a wildcard bind address is asked on the loopback).
 */
export function routeUrl(config: Config, route: RouteName, base: string | undefined): URL {
  const listener = config.servers.find((s) => s.routes[route] !== undefined);
  const path = listener?.routes[route] ?? DEFAULT_ROUTES[route];
  if (base !== undefined) {
    try {
      return new URL(path, base.endsWith('/') ? base : `${base}/`);
    } catch {
      throw new CliError(ExitCode.Usage, `--url "${base}" is not a URL`, 'give the server\'s base URL, e.g. --url http://127.0.0.1:8010');
    }
  }
  if (listener === undefined || listener.port === 0) {
    throw new CliError(ExitCode.Usage, `no listener of this configuration serves the ${route} route (${path})`, 'pass --url <base URL of the server that does>, or the --config file of that server');
  }
  return new URL(`${listener.ssl ? 'https' : 'http'}://${connectHost(listener.hostname)}:${listener.port}${path}`);
}

/** The address to connect to for a bind address. */
export function connectHost(hostname: string): string {
  if (hostname === '0.0.0.0' || hostname === '') return '127.0.0.1';
  if (hostname === '::') return '[::1]';
  return hostname.includes(':') ? `[${hostname}]` : hostname;
}

/** NATS as the server uses it: NATS_URL, or the local nats-server `jetpull serve` starts without it. */
export function natsOf(config: Config, override: string | undefined) {
  const url = override ?? config.nats.url ?? (config.nats.localPort > 0 ? `nats://127.0.0.1:${config.nats.localPort}` : undefined);
  if (url === undefined) throw new CliError(ExitCode.Usage, 'no NATS URL: NATS_URL is unset and the local nats-server takes a free port', 'pass --nats-url (the "started local nats-server" log line of jetpull serve gives it) or set NATS_URL');
  return {
    servers: url.split(',').map((s) => s.trim()),
    subject: config.publisher.natsSubject,
    ...(config.nats.user === undefined ? {} : { user: config.nats.user, pass: natsPassword(config) }),
    ...(config.nats.token === undefined ? {} : { token: config.nats.token }),
    ...(config.nats.credsFile === undefined ? {} : { credsFile: config.nats.credsFile }),
  };
}

/** nats.password, or what nats.passwordFile holds (as the server reads it). */
function natsPassword(config: Config): string {
  if (config.nats.passwordFile === undefined) return config.nats.password ?? '';
  try {
    return readFileSync(config.nats.passwordFile, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new CliError(ExitCode.Usage, `cannot read nats.passwordFile ${config.nats.passwordFile}`, 'point PUSH_NATS__PASSWORD_FILE at the file holding the NATS password', { cause: err });
  }
}

/**
 * The key the pub route's requests are signed with (security.signedPublishing), when
 * the configuration has one: a server with signing off ignores the signature.
 */
export function signatureOf(config: Config): { signature?: { key: string; algo: string } } {
  return config.security.key === undefined ? {} : { signature: { key: config.security.key, algo: config.security.algo } };
}

/** GET a trusted JSON route; failures say what to do. */
export async function getJson(url: URL, what: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(ExitCode.Failure, `cannot reach ${url.origin} for ${what}: ${cause}`, 'is jetpull running there (jetpull serve)? Otherwise pass --url or the --config of that server', { cause: err });
  }
  const text = await res.text();
  if (res.status === 404) throw new CliError(ExitCode.Failure, `${url.href} answered 404`, `that listener does not serve ${url.pathname}; pass --url of one that does`);
  if (res.status !== 200) throw new CliError(ExitCode.Failure, `${url.href} answered ${res.status}: ${text.slice(0, 200)}`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliError(ExitCode.Failure, `${url.href} did not answer JSON`, 'is that a jetpull (or Push server 2.0) listener?', { cause: err });
  }
}
