import type { Logger } from './logger.ts';

/**
 * A promise rejection nobody handled is a bug in one request's path, not a reason to
 * drop every connection of the process: it is logged and the process keeps serving.
 * An uncaught exception leaves state unknown: it is logged and the process exits, for
 * its supervisor (compose, systemd, the cluster primary) to start a fresh one.
 */
export function guardProcess(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception, exiting');
    process.exit(1);
  });
}
