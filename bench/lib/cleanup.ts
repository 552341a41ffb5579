import { log } from './util.ts';

/**
 * Children and temporary directories are registered here and released however the
 * run ends: normal completion (async, graceful), SIGINT/SIGTERM, an uncaught error,
 * or process exit (synchronous last resort: SIGKILL and rmSync).
 */

type AsyncCleanup = () => Promise<void>;
type SyncCleanup = () => void;

interface Entry {
  name: string;
  async: AsyncCleanup;
  sync: SyncCleanup;
}

const entries = new Set<Entry>();
let installed = false;
let exiting = false;

/** Registers a resource; returns a function that unregisters it (after it was released normally). */
export function registerCleanup(name: string, asyncFn: AsyncCleanup, syncFn: SyncCleanup): () => void {
  const e: Entry = { name, async: asyncFn, sync: syncFn };
  entries.add(e);
  return () => entries.delete(e);
}

/** Releases everything still registered, newest first, each bounded in time. */
export async function runCleanups(timeoutMs = 15_000): Promise<void> {
  const list = [...entries].reverse();
  entries.clear();
  for (const e of list) {
    try {
      await Promise.race([
        e.async(),
        new Promise<void>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref()),
      ]);
    } catch (err) {
      log(`cleanup of ${e.name} failed (${String(err)}); forcing`);
      try {
        e.sync();
      } catch {
        // last resort below
      }
    }
  }
}

function runSyncCleanups(): void {
  const list = [...entries].reverse();
  entries.clear();
  for (const e of list) {
    try {
      e.sync();
    } catch {
      // nothing more to do while exiting
    }
  }
}

export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runSyncCleanups);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (exiting) {
      runSyncCleanups();
      process.exit(130);
    }
    exiting = true;
    log(`${signal}: stopping children and removing temporary files`);
    void runCleanups(5_000).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const onFatal = (err: unknown): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`bench: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void runCleanups(5_000).finally(() => process.exit(1));
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
}
