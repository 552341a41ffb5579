/**
 * Every process group the suite starts is registered here, so that it is killed
 * however the test process ends: a normal teardown unregisters it, a failure or a
 * signal from the test runner kills what is left (SIGCONT first: a paused
 * nats-server would otherwise ignore everything but SIGKILL).
 */
import { rmSync } from 'node:fs';

const groups = new Map<number, string>();
const tempDirs = new Set<string>();
let installed = false;

export function registerGroup(pid: number, name: string): void {
  install();
  groups.set(pid, name);
}

/** A directory removed at exit unless released (removed) before. */
export function registerTempDir(dir: string): void {
  install();
  tempDirs.add(dir);
}

export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export function unregisterGroup(pid: number): void {
  groups.delete(pid);
}

/** SIGKILLs every registered group now (synchronous: usable from an exit handler). */
export function killAllRegistered(): void {
  for (const pid of groups.keys()) {
    for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(-pid, sig);
      } catch {
        // gone already
      }
    }
  }
  groups.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllRegistered);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllRegistered();
      process.exit(130);
    });
  }
}
