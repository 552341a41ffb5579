import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { NATS_PASSWORD_VARS, readNatsConf, testNatsConf } from './lib/nats-conf.ts';
import { repoPath } from './lib/paths.ts';

/** deploy/nats: the single-node config and one config per cluster node (sharing common.conf). */

const clusterNodes = readdirSync(repoPath('deploy/nats/cluster'))
  .filter((f) => /^nats\d+\.conf$/.test(f))
  .map((f) => `deploy/nats/cluster/${f}`);
const files = ['deploy/nats/nats-server.conf', ...clusterNodes];

describe('deploy: NATS configs', () => {
  it('every node config is valid for nats-server -t', async () => {
    assert.ok(clusterNodes.length >= 3, 'a config per cluster node');
    for (const file of files) {
      const { code, output } = await testNatsConf(repoPath(file));
      assert.equal(code, 0, `nats-server -c ${file} -t: ${output.trim()}`);
    }
  });

  it('every node has the users of auth.conf, whose passwords come from the environment only', () => {
    for (const file of files) {
      const users = readNatsConf(repoPath(file)).get('authorization.users');
      assert.ok(Array.isArray(users) && users.length === 3, `${file}: three users`);
      assert.deepEqual(users.map((u) => /user: (\w+)/.exec(u)?.[1]), ['gateway', 'publisher', 'jetpull'], file);
      assert.deepEqual(users.map((u) => /password: \$(\w+),/.exec(u)?.[1]), [...NATS_PASSWORD_VARS], `${file}: every password is an environment reference`);
    }
    assert.doesNotMatch(readFileSync(repoPath('deploy/nats/auth.conf'), 'utf8'), /password\s*[:=]\s*["']/, 'no literal password');
  });

  it('the jetpull user (role all) may do exactly what the gateway and publisher users together may', () => {
    const conf = readNatsConf(repoPath('deploy/nats/auth.conf'));
    const list = (role: string, key: string): string[] => {
      const v = conf.get(`authorization.${role}.${key}.allow`);
      assert.ok(Array.isArray(v), `${role}.${key}.allow is a list`);
      return v;
    };
    for (const key of ['publish', 'subscribe']) {
      const all = [...new Set([...list('GATEWAY', key), ...list('PUBLISHER', key)])];
      // push.msg.pub.> is within push.msg.>: a subject another entry's wildcard covers is left out.
      const covered = (subject: string): boolean => all.some((w) => w !== subject && w.endsWith('.>') && subject.startsWith(w.slice(0, -1)));
      const union = all.filter((subject) => !covered(subject)).sort();
      assert.deepEqual([...list('ALL_ROLES', key)].sort(), union, `ALL_ROLES.${key}`);
    }
    assert.equal(conf.get('authorization.PUBLISHER.allow_responses'), 'true');
    assert.equal(conf.get('authorization.ALL_ROLES.allow_responses'), 'true');
    assert.ok(!list('GATEWAY', 'publish').some((s) => s === 'push.publish' || s === 'push.msg.>' || s.startsWith('push.msg.priv')), 'gateways cannot publish for the backend');
    assert.ok(!list('PUBLISHER', 'subscribe').some((s) => s.startsWith('push.live')) && !list('PUBLISHER', 'publish').some((s) => s.startsWith('$KV.PUSH_PRESENCE')), 'publishers hold no client side');
  });

  it('the cluster nodes differ only in their name and routes', () => {
    const shared = clusterNodes.map((file) => {
      const settings = readNatsConf(repoPath(file));
      settings.delete('server_name');
      settings.delete('cluster.routes');
      return Object.fromEntries(settings);
    });
    for (const [i, s] of shared.entries()) assert.deepEqual(s, shared[0], `${clusterNodes[i]} and ${clusterNodes[0]}: the same settings apart from server_name and cluster.routes`);
  });
});
