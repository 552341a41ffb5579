import assert from 'node:assert/strict';
import { posix } from 'node:path';
import type { Config } from '../../../src/config/schema.ts';
import { mountedFile, serviceEnv, volumeMounts, type ComposeFile } from './compose.ts';
import { readNatsConf } from './nats-conf.ts';
import { repoPath } from './paths.ts';
import { sequence, type Mapping } from './shape.ts';

/** The NATS user of each jetpull role in deploy/nats/auth.conf. */
export const USER_OF_ROLE: Record<Config['role'], string> = { gateway: 'gateway', publisher: 'publisher', all: 'jetpull' };

/**
 * The compose side of deploy/nats/auth.conf: every NATS node runs deploy/nats/start.sh,
 * which writes and reads one password per user in /auth/<user> (a volume per user);
 * every jetpull service logs in as its role's user with the password file of that
 * user's volume, mounted read-only, and sees no other user's volume.
 */
export function assertNatsUsers(c: ComposeFile, nodes: Array<[string, Mapping]>, jetpull: Array<[string, Mapping, Config]>): void {
  const volumeOfUser = new Map<string, string>();
  for (const [name, svc] of nodes) {
    const entrypoint = sequence(svc.entrypoint, `${name}.entrypoint`).map(String);
    assert.equal(entrypoint[0], '/bin/sh', `${name}: the entrypoint is a shell script`);
    assert.equal(mountedFile(c, svc, name, entrypoint[1]!), 'deploy/nats/start.sh', `${name}: runs deploy/nats/start.sh`);
    const users = readNatsConf(repoPath(mountedFile(c, svc, name, String(sequence(svc.command, `${name}.command`)[1])))).get('authorization.users');
    assert.ok(Array.isArray(users) && users.length > 0, `${name}: its config has the users of auth.conf`);
    for (const user of Object.values(USER_OF_ROLE)) {
      const m = volumeMounts(svc, name).find((v) => v.target === `/auth/${user}`);
      assert.ok(m?.named && !m.readOnly, `${name}: a writable named volume at /auth/${user}`);
      assert.equal(volumeOfUser.get(user) ?? m.source, m.source, `${name}: the same volume for ${user} on every node`);
      volumeOfUser.set(user, m.source);
    }
  }
  for (const [name, svc, cfg] of jetpull) {
    const user = USER_OF_ROLE[cfg.role];
    const env = serviceEnv(svc, name);
    assert.equal(env.PUSH_NATS__USER, user, `${name} (role ${cfg.role}) logs in as ${user}`);
    assert.equal(env.PUSH_NATS__PASSWORD, undefined, `${name}: no password in the file`);
    const file = env.PUSH_NATS__PASSWORD_FILE;
    assert.ok(file, `${name}: PUSH_NATS__PASSWORD_FILE is set`);
    const mount = volumeMounts(svc, name).find((m) => file.startsWith(`${m.target}/`));
    assert.ok(mount?.named && mount.readOnly, `${name}: the password file is on a read-only named volume`);
    assert.equal(mount.source, volumeOfUser.get(user), `${name}: the volume of user ${user}`);
    assert.equal(posix.relative(mount.target, file), 'password', `${name}: the file start.sh writes`);
    const others = [...volumeOfUser].filter(([u]) => u !== user).map(([, v]) => v);
    for (const m of volumeMounts(svc, name)) assert.ok(!others.includes(m.source), `${name}: sees no other user's password (${m.source})`);
  }
}
