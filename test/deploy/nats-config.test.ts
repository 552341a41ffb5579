import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readNatsConf, testNatsConf } from './lib/nats-conf.ts';
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
