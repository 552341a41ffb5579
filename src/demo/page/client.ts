// The demo page's code, bundled with the official pull client for the browser
// (src/demo/assets.ts). It plays the portal's part: the client asks its REST method
// `pull.application.config.get`, answered here from jetpull's /demo/config, then
// connects to jetpull's public listener (another origin) by itself.
import { B24PullClientManager } from '@bitrix24/b24jssdk';

const MODULE = 'demo';
const ONLINE_POLL_MS = 2_000;
const CURSOR_REFRESH_MS = 500;

interface DemoConfig {
  config: Record<string, unknown>;
  user: { userId: number; privateId: string };
  backendPublishUrl: string | null;
  pageOrigin: string;
  pageOriginAllowed: boolean;
}

const el = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
const query = new URLSearchParams(location.search);
const userId = Number(query.get('user') ?? '1');
const version = el<HTMLSelectElement>('version');
const transport = el<HTMLSelectElement>('transport');
if (query.get('version')) version.value = query.get('version')!;
if (query.get('transport')) transport.value = query.get('transport')!;

let client: B24PullClientManager | undefined;
/** When the current connection went online: a message published before it came by replay. */
let connectedAt = 0;

function debugInfo(): Record<string, unknown> {
  return (client?.getDebugInfo() as Record<string, unknown> | undefined) ?? {};
}

function showCursor(): void {
  const info = debugInfo();
  el('mid').textContent = String(info['Last message'] ?? '-');
  el('path').textContent = String(info['Path'] ?? '-');
  el('mode').textContent = transport.value === 'websocket' ? `WebSocket, ${String(info['WebSocket mode'] ?? '-')}` : 'long polling';
}

function showMessage(params: Record<string, unknown>): void {
  const sentAt = typeof params.sent_at === 'number' ? params.sent_at : undefined;
  const replayed = sentAt !== undefined && sentAt < connectedAt;
  const li = document.createElement('li');
  li.dataset.replayed = String(replayed);
  li.dataset.text = String(params.text ?? '');
  const mid = String(debugInfo()['Last message'] ?? '-');
  li.innerHTML = '<time></time> <span class="text"></span> <span class="badge"></span> <code class="mid"></code>';
  li.querySelector('time')!.textContent = new Date().toLocaleTimeString();
  li.querySelector('.text')!.textContent = typeof params.text === 'string' ? params.text : JSON.stringify(params);
  li.querySelector('.badge')!.textContent = replayed ? 'replayed by mid' : sentAt === undefined ? '' : 'live';
  li.querySelector('.mid')!.textContent = `cursor ${mid}`;
  el('messages').prepend(li);
  showCursor();
}

function curlExamples(info: DemoConfig): string {
  const body = `'{"module_id":"${MODULE}","command":"message","params":{"text":"hello from curl"}}'`;
  const demo = `curl -X POST '${location.origin}/demo/publish?user=${userId}' -H 'Message-Expiry: 3600' -d ${body}`;
  if (info.backendPublishUrl === null) return demo;
  return `# as a portal's backend publishes:\ncurl -X POST '${info.backendPublishUrl}' -H 'Message-Expiry: 3600' -d ${body}\n# through this page's route:\n${demo}`;
}

async function loadConfig(): Promise<DemoConfig> {
  const res = await fetch(`/demo/config?user=${userId}&version=${version.value}&transport=${transport.value}`);
  if (!res.ok) throw new Error(`/demo/config: ${res.status} ${await res.text()}`);
  return (await res.json()) as DemoConfig;
}

async function connect(): Promise<void> {
  client?.destroy();
  connectedAt = 0;
  history.replaceState(null, '', `?user=${userId}&version=${version.value}&transport=${transport.value}`);
  const first = await loadConfig();
  el('user').textContent = `${userId} (channel ${first.user.privateId})`;
  el('curl').textContent = curlExamples(first);
  el('warning').textContent = first.pageOriginAllowed ? '' : `jetpull refuses this page: its origin ${first.pageOrigin} is not in security.allowedOrigins (PUSH_SECURITY__ALLOWED_ORIGINS); add it there to subscribe from here.`;
  const ok = (result: unknown) => ({ getData: () => ({ result }) });
  // The portal's REST API as far as the client uses it: its config, asked again on each restart.
  const b24 = {
    actions: { v2: { call: { make: async ({ method }: { method: string }) => ok(method.endsWith('config.get') ? (await loadConfig()).config : {}) } } },
    callMethod: async () => ok({}),
  };
  // skipStorageInit: no config or mid cached in localStorage, so a changed protocol or transport takes effect at once.
  const c = new B24PullClientManager({ b24: b24 as never, restApplication: 'jetpull_demo', userId, skipStorageInit: true });
  client = c;
  c.subscribe({ moduleId: MODULE, callback: (data: { params: Record<string, unknown> }) => showMessage(data.params) } as never);
  c.subscribe({
    type: 'status',
    callback: (data: { status: string }) => {
      if (data.status === 'online') connectedAt = Date.now();
      el('status').textContent = data.status === 'connect' ? 'connecting' : data.status;
      el('status').dataset.status = data.status;
      showCursor();
    },
  } as never);
  await c.start();
  showCursor();
}

async function publish(event: Event): Promise<void> {
  event.preventDefault();
  const text = el<HTMLInputElement>('text').value;
  const body = JSON.stringify({ module_id: MODULE, command: 'message', params: { text, sent_at: Date.now() } });
  const out = el('published');
  delete out.dataset.ok;
  out.textContent = 'publishing…';
  const res = await fetch(`/demo/publish?user=${userId}`, { method: 'POST', body, headers: { 'Message-Expiry': el<HTMLInputElement>('expiry').value } }).catch(() => undefined);
  out.dataset.ok = String(res?.ok === true);
  if (res === undefined) out.textContent = 'not stored: jetpull unreachable';
  else out.textContent = res.ok ? `stored as mid ${((await res.json()) as { mid: string }).mid}` : `not stored: ${res.status} ${await res.text()}`;
}

async function pollOnline(): Promise<void> {
  const res = await fetch(`/demo/online?user=${userId}`).catch(() => undefined);
  const online = res?.ok ? ((await res.json()) as { online: boolean }).online : undefined;
  el('online').textContent = online === undefined ? 'jetpull unreachable' : online ? 'online' : 'offline';
}

const reconnect = (): void => {
  connect().catch((err: unknown) => (el('status').textContent = `failed: ${String(err)}`));
};
version.addEventListener('change', reconnect);
transport.addEventListener('change', reconnect);
el('connect').addEventListener('click', reconnect);
el('publish-form').addEventListener('submit', (e) => void publish(e));
setInterval(() => void pollOnline(), ONLINE_POLL_MS);
setInterval(showCursor, CURSOR_REFRESH_MS);
void pollOnline();
reconnect();
