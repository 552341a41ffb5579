/**
 * `jetpull/client`: publishing to jetpull from a Node backend, over the HTTP route the
 * PHP module uses or over NATS, with retries that store a message once.
 *
 *   import { createPublisher } from 'jetpull/client';
 *   const pub = createPublisher({ http: { url: 'http://127.0.0.1:8895/bitrix/pub/' } });
 *   await pub.publish({ channels: [privateId], message: { module_id: 'im', command: 'message', params: { text: 'hi' } }, expirySec: 3600 });
 */
export { createPublisher, publish, type Publisher, type PublisherOptions, type PublishReceipt } from './publisher.ts';
export type { ChannelRef, PublishRequest, PullMessage } from './message.ts';
export { InvalidPublishError, PublishError, PublishFailedError, PublishRefusedError } from './errors.ts';
export type { RetryEvent, RetryPolicy } from './retry.ts';
