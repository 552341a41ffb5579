import type { PreparedPublish } from './message.ts';

/** One way to reach jetpull; `send` is one attempt and throws an AttemptError when it fails. */
export interface Transport {
  readonly via: 'http' | 'nats';
  send(p: PreparedPublish, timeoutMs: number): Promise<{ mids: string[] | undefined }>;
  close(): Promise<void>;
}
