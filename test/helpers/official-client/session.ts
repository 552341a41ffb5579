import { B24PullClientManager } from '@bitrix24/b24jssdk';
import type { TestUser } from '../channels.ts';
import { buildPullConfig, type PullConfigOptions, type Transport } from './config.ts';
import { installBrowserShims } from './dom.ts';
import { subscribeInbox, type Inbox } from './inbox.ts';
import { fakePortalRest } from './portal-rest.ts';
import { closeTap, openTap, type Tap } from './tap.ts';

export interface OfficialClientOptions extends PullConfigOptions {
  /** Subscribe to this one command (the `(params, extra, command, info)` callback form) instead of the whole module. */
  command?: string;
  /** Portal user id (> 0). Default 1. */
  userId?: number;
  /**
   * Users the client may publish to with `sendMessage(userIds, …)` (v4): the portal
   * answers `pull.channel.public.list` with their public ids and signatures.
   */
  publicUsers?: Record<number, TestUser>;
  /** The config the portal answers, as it is; default: one built from the other options. */
  config?: ReturnType<typeof buildPullConfig>;
}

/** One pull client, not started yet, with everything that records what it does. */
export interface Session {
  readonly client: B24PullClientManager;
  readonly transport: Transport;
  /** The user's private id, which the tap matches in URLs. */
  readonly priv: string;
  readonly tap: Tap;
  readonly inbox: Inbox;
  /** REST methods the client called on the portal. */
  readonly restCalls: string[];
}

export function openSession(opts: OfficialClientOptions): Session {
  installBrowserShims();
  const config = opts.config ?? buildPullConfig(opts);
  const tap = openTap(opts.user.priv);
  const restCalls: string[] = [];
  const client = new B24PullClientManager({
    b24: fakePortalRest(config, opts.publicUsers ?? {}, restCalls),
    restApplication: 'jetpull_test',
    userId: opts.userId ?? 1,
  });
  const inbox = subscribeInbox(client, opts.command);
  return { client, transport: opts.transport ?? 'websocket', priv: opts.user.priv, tap, inbox, restCalls };
}

/** Destroys the client and waits until its sockets are gone, so that nothing keeps the process alive. */
export async function closeSession(s: Session): Promise<void> {
  s.inbox.unsubscribe();
  // destroy(): stop(1000, 'manual stop'), every SDK timer (60 s config check,
  // reconnect, offline status…) cleared, window listeners removed.
  s.client.destroy();
  s.tap.releaseConnections();
  const deadline = Date.now() + 2_000;
  while (s.tap.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  s.tap.closeAll();
  closeTap(s.tap);
}
