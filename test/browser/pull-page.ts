// Bundled with esbuild into the page that the browser test serves from its own
// origin (test/helpers/browser.ts): the official pull client, unmodified, with a fake
// `b24` REST client that hands it the config the test passes in.
import { B24PullClientManager } from '@bitrix24/b24jssdk';

interface Received {
  command: string;
  params: unknown;
  extra: unknown;
  info: unknown;
}

interface PageApi {
  __got: Received[];
  __startPull(config: Record<string, unknown>, moduleId: string): Promise<string>;
  __stopPull(): void;
}

const page = globalThis as unknown as PageApi;
let client: B24PullClientManager | undefined;

page.__got = [];

page.__startPull = async (config, moduleId) => {
  const ok = (result: unknown) => ({ getData: () => ({ result }) });
  const b24 = {
    actions: {
      v2: {
        call: {
          make: async ({ method }: { method: string }) =>
            ok(method.endsWith('config.get') ? { ...config, serverTime: new Date().toISOString() } : {}),
        },
      },
    },
    callMethod: async () => ok({}),
  };
  client = new B24PullClientManager({ b24: b24 as never, restApplication: 'jetpull_browser_test', userId: 1 });
  client.subscribe({
    moduleId,
    callback: (data: { command: string; params: unknown; extra: unknown }, info: unknown) => {
      page.__got.push({ command: data.command, params: data.params, extra: data.extra, info });
    },
  } as never);
  await client.start();
  return String(client.getDebugInfo()['WebSocket mode'] ?? '');
};

page.__stopPull = () => {
  // stop(1000, 'manual stop') and every SDK timer cleared.
  client?.destroy();
};
