import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * The root logger. Every other logger is a child of this one: per actor
 * (`{ actor }`), then per connection (`{ connId, transport }`). Secrets are
 * redacted by path so a stray config or header object cannot leak them.
 */
export function createRootLogger(
  options: { level: string; processUniqueId: string; version: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'jetpull', version: options.version, processUniqueId: options.processUniqueId, pid: process.pid },
      redact: {
        paths: [
          'security.key',
          '*.security.key',
          'security.previousKeys',
          '*.security.previousKeys',
          'key',
          'password',
          '*.password',
          'token',
          '*.token',
          'headers.authorization',
          'headers.cookie',
        ],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
