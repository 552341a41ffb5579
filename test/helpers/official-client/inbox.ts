import { SubscriptionType, type B24PullClientManager } from '@bitrix24/b24jssdk';

export interface ReceivedEvent {
  command: string;
  params: Record<string, unknown>;
  extra: Record<string, unknown>;
  info: { type: string; moduleId: string };
}

export interface Inbox {
  /** What reached the subscriber of server messages, in order. */
  readonly events: ReceivedEvent[];
  /** What reached the `type: 'client'` subscriber (messages other clients published, `extra.sender.type == 1`), in order. */
  readonly clientEvents: ReceivedEvent[];
  /** `type: 'status'` notifications: connect / online / offline. */
  readonly statuses: string[];
  unsubscribe(): void;
}

/** The client lower-cases `module_id` before dispatch, so this is lower case. */
const MODULE_ID = 'application';

type ModuleMessage = { command: string; params: unknown; extra: unknown };

/**
 * Subscribes to the module's server messages (or to its one `command`, with the
 * `(params, extra, command, info)` callback form), to its client messages and to
 * status changes, and records what arrives.
 */
export function subscribeInbox(client: B24PullClientManager, command?: string): Inbox {
  const events: ReceivedEvent[] = [];
  const clientEvents: ReceivedEvent[] = [];
  const statuses: string[] = [];
  const record = (into: ReceivedEvent[], command: string, params: unknown, extra: unknown, info: unknown): void => {
    into.push({
      command,
      params: (params ?? {}) as Record<string, unknown>,
      extra: (extra ?? {}) as Record<string, unknown>,
      info: info as ReceivedEvent['info'],
    });
  };
  const unsubscribe = [
    command
      ? client.subscribe({
          moduleId: MODULE_ID,
          command,
          callback: (params: unknown, extra: unknown, cmd: string, info: unknown) => record(events, cmd, params, extra, info),
        })
      : client.subscribe({
          moduleId: MODULE_ID,
          callback: (m: ModuleMessage, info: unknown) => record(events, m.command, m.params, m.extra, info),
        }),
    client.subscribe({
      type: SubscriptionType.Client,
      moduleId: MODULE_ID,
      callback: (m: ModuleMessage, info: unknown) => record(clientEvents, m.command, m.params, m.extra, info),
    }),
    client.subscribe({
      type: SubscriptionType.Status,
      callback: (data: { status: string }) => statuses.push(data.status),
    }),
  ];
  return {
    events,
    clientEvents,
    statuses,
    unsubscribe: () => {
      for (const u of unsubscribe) u();
    },
  };
}
