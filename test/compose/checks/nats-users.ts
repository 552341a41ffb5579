import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { SuiteContext } from '../context.ts';
import { natsScript } from '../nats-probe.ts';

const NODES = ['nats1', 'nats2', 'nats3'];
const violationsIn = (log: string): string[] => log.split('\n').filter((l) => /violation/i.test(l));

/**
 * The NATS users of deploy/nats/auth.conf in the running stack: passwords generated on
 * the first start, each jetpull container holding only its own role's, nothing the
 * checks before did refused by NATS, and each role refused the other's subjects.
 * Runs after the protocol, failover and gateway-stop checks, whose traffic it judges.
 */
export function natsUsersChecks(ctx: SuiteContext): void {
  const { compose } = ctx;

  it('generated one password per NATS user, the same on every node, each jetpull container holding its own role\'s', async () => {
    const read = async (service: string, file: string): Promise<string> => (await compose.ok(['exec', '-T', service, 'cat', file])).stdout;
    const byUser = new Map<string, string>();
    for (const user of ['gateway', 'publisher', 'jetpull']) {
      const values = await Promise.all(NODES.map((n) => read(n, `/auth/${user}/password`)));
      assert.equal(new Set(values).size, 1, `${user}: one password on every node`);
      assert.match(values[0]!, /^jp[0-9a-f]{48}$/, `${user}: a generated password`);
      byUser.set(user, values[0]!);
    }
    assert.equal(new Set(byUser.values()).size, 3, 'a different password per user');
    for (const [service, user] of [['gateway1', 'gateway'], ['gateway2', 'gateway'], ['publisher1', 'publisher']] as const) {
      assert.equal(await read(service, '/run/nats-auth/password'), byUser.get(user), `${service}: the ${user} password`);
    }
  });

  it('no NATS node logged a permission violation for what the stack did so far', async () => {
    for (const node of NODES) {
      const log = await compose.logs(node);
      assert.deepEqual(violationsIn(log.stdout + log.stderr), [], `${node}: permission violations`);
    }
  });

  it('a gateway container is refused push.publish, the publisher container push.live.>', async () => {
    const gateway = await compose.exec('gateway1', ['node', '-e', natsScript(`
    await nc.request('push.publish', '{}', { timeout: 3000 }).then(() => { throw new Error('answered'); }, (e) => console.log(String(e)));
    `)], 20_000);
    assert.equal(gateway.code, 0, gateway.stderr);
    assert.match(gateway.stdout, /permission/i, 'the gateway user gets a permissions error');
    const publisher = await compose.exec('publisher1', ['node', '-e', natsScript(`
    const sub = nc.subscribe('push.live.>');
    await (async () => { for await (const _ of sub) break; })().then(() => { throw new Error('subscribed'); }, (e) => console.log(String(e)));
    `)], 20_000);
    assert.equal(publisher.code, 0, publisher.stderr);
    assert.match(publisher.stdout, /permission/i, 'the publisher user gets a permissions error');
  });
}
