import type { Compose } from './compose.ts';

/**
 * JetStream API requests over the NATS protocol from inside the compose network (the
 * client port is not published): a short script run by the node of a jetpull container,
 * with the NATS client that the image already has, logged in as that container's NATS
 * user (PUSH_NATS__USER and the password file its role's volume holds).
 */

/** Connects as the container's jetpull does; `op(nc)` is the body of an async function. */
export function natsScript(op: string): string {
  return `
const { readFileSync } = require('node:fs');
const { connect } = require('@nats-io/transport-node');
(async () => {
  const user = process.env.PUSH_NATS__USER;
  const pass = process.env.PUSH_NATS__PASSWORD_FILE ? readFileSync(process.env.PUSH_NATS__PASSWORD_FILE, 'utf8') : undefined;
  const nc = await connect({ servers: process.env.NATS_URL.split(','), timeout: 3000, ...(user ? { user, pass } : {}) });
  try {
    ${op}
  } finally {
    await nc.close();
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });
`;
}

export interface StreamCluster {
  leader?: string;
  replicas?: Array<{ name: string; current: boolean; offline?: boolean }>;
}

const SCRIPT = natsScript(`
    const m = await nc.request(process.argv[1], '', { timeout: 3000 });
    process.stdout.write(new TextDecoder().decode(m.data));
`);

/** The answer of one JetStream API subject, e.g. $JS.API.STREAM.INFO.PUSH_MESSAGES. */
export async function jsApi(compose: Compose, via: string, subject: string): Promise<unknown> {
  const r = await compose.exec(via, ['node', '-e', SCRIPT, subject], 20_000);
  if (r.code !== 0) throw new Error(`${subject} via ${via}: ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}

export async function streamCluster(compose: Compose, via: string, stream: string): Promise<StreamCluster> {
  const info = (await jsApi(compose, via, `$JS.API.STREAM.INFO.${stream}`)) as { cluster?: StreamCluster; error?: { description: string } };
  if (info.error) throw new Error(`stream ${stream}: ${info.error.description}`);
  return info.cluster ?? {};
}

/** Polls until the stream has a leader other than `not`. */
export async function waitForLeader(compose: Compose, via: string, stream: string, not: string | undefined, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const c = await streamCluster(compose, via, stream);
      if (c.leader && c.leader !== not) return c.leader;
      last = c;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`no leader for ${stream} within ${timeoutMs} ms: ${String(last instanceof Error ? last.message : JSON.stringify(last))}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
