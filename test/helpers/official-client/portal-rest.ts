import type { TypePullClientConfig, TypePullClientParams } from '@bitrix24/b24jssdk';
import type { TestUser } from '../channels.ts';
import { publicChannelList } from './config.ts';

type CallResult = { getData: () => { result: unknown } };

const ok = (result: unknown): CallResult => ({ getData: () => ({ result }) });

/**
 * The portal's REST API as the pull client calls it through its `b24` object
 * (official-client.md §2): `…config.get` answers `config` plus `serverTime`,
 * `pull.channel.public.list` answers from `publicUsers`, anything else an empty
 * result. Each method name called is appended to `calls`.
 */
export function fakePortalRest(config: TypePullClientConfig, publicUsers: Record<number, TestUser>, calls: string[]): TypePullClientParams['b24'] {
  const b24 = {
    actions: {
      v2: {
        call: {
          make: async ({ method }: { method: string; params?: unknown }): Promise<CallResult> => {
            calls.push(method);
            if (method.endsWith('config.get')) return ok({ ...structuredClone(config), serverTime: new Date().toISOString() });
            return ok({});
          },
        },
      },
    },
    callMethod: async (method: string, params?: { users?: unknown[] }): Promise<CallResult> => {
      calls.push(method);
      if (method === 'pull.channel.public.list') return ok(publicChannelList(publicUsers, params?.users ?? []));
      return ok({});
    },
  };
  // The pull client uses only these two entry points, not the whole TypeB24 interface.
  return b24 as unknown as TypePullClientParams['b24'];
}
