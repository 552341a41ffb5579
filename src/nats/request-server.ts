import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log/logger.ts';

/** Answers one request: the reply text, or undefined for no reply. */
export type RequestHandler = (data: Uint8Array) => Promise<string | undefined>;

/**
 * Serves NATS request/reply on a subject in a queue group, so requests spread over
 * every process that serves it. A reply that cannot be sent (the connection closed
 * meanwhile, the requester gone) is logged, never thrown.
 */
export function serveRequests(nc: NatsConnection, subject: string, queue: string, handle: RequestHandler, log: Logger): { stop(): void } {
  const sub: Subscription = nc.subscribe(subject, {
    queue,
    callback: (err, msg) => {
      if (err) {
        log.warn({ err, subject }, 'request subscription failed');
        return;
      }
      handle(msg.data).then(
        (reply) => {
          if (reply === undefined || !msg.reply) return;
          try {
            msg.respond(reply);
          } catch (respondErr) {
            log.debug({ err: respondErr, subject }, 'reply not sent');
          }
        },
        (handlerErr: unknown) => log.error({ err: handlerErr, subject }, 'request handler failed'),
      );
    },
  });
  return { stop: () => sub.unsubscribe() };
}
