import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { run } from './run.ts';

/** "resolve" on upstream servers came to open-source nginx in 1.27.3. */
export const NGINX_MIN_VERSION: readonly [number, number, number] = [1, 27, 3];

export type NginxTest = { ran: false; reason: string } | { ran: true; version: string; code: number; output: string };

function findNginx(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    const candidate = join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

const atLeast = (v: number[], min: readonly number[]): boolean => {
  for (let i = 0; i < min.length; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  return true;
};

/**
 * `nginx -t` on a config, when an nginx that understands it is installed. The prefix
 * and the start-up error log go to a temporary folder so the check needs no nginx
 * layout on the machine beyond what the config itself names.
 */
export async function nginxTest(confPath: string): Promise<NginxTest> {
  const binary = findNginx();
  const min = NGINX_MIN_VERSION.join('.');
  if (!binary) return { ran: false, reason: `no nginx installed; nginx -t needs nginx ${min} or newer for this config` };
  const { output: versionOutput } = await run(binary, ['-v']);
  const version = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(versionOutput);
  if (!version) return { ran: false, reason: `${binary} -v did not report an nginx version: ${versionOutput.trim()}` };
  const found = version.slice(1).map(Number);
  if (!atLeast(found, NGINX_MIN_VERSION)) {
    return { ran: false, reason: `${binary} is nginx ${found.join('.')}; this config needs ${min} or newer ("resolve" in upstream)` };
  }
  const prefix = mkdtempSync(join(tmpdir(), 'jetpull-nginx-t-'));
  try {
    const { code, output } = await run(binary, ['-t', '-q', '-p', prefix, '-e', join(prefix, 'error.log'), '-c', confPath]);
    return { ran: true, version: found.join('.'), code, output };
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}
