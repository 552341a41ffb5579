import { PAGE_URL } from './page.ts';
import { NodeWebSocket } from './websocket-shim.ts';
import { NodeXhr } from './xhr-shim.ts';

let installed = false;

/**
 * Puts on globalThis the browser globals the pull client reads (official-client.md
 * §9): `WebSocket` and `XMLHttpRequest`; `window`, an EventTarget whose `WebSocket`
 * makes the client choose WebSocket; and `document`, which v4 needs for its
 * `'attachEvent' in document` check and whose URL scheme picks the plain or secure
 * endpoints. There is no localStorage: the client then neither caches its config
 * nor persists its session.
 *
 * Installed on first start, after the SDK was imported: axios, one of its
 * dependencies, reads window.location at import time when window and document exist.
 */
export function installBrowserShims(): void {
  if (installed) return;
  installed = true;
  const win = new EventTarget() as EventTarget & { WebSocket?: unknown };
  // Every client's SharedConfig adds a `storage` listener it never removes. Without
  // localStorage it never fires, and dropping it keeps destroyed clients from piling
  // up on `window` (Node warns past ten listeners).
  const addListener = win.addEventListener.bind(win);
  win.addEventListener = ((type: string, ...rest: unknown[]) => {
    if (type === 'storage') return;
    (addListener as (...a: unknown[]) => void)(type, ...rest);
  }) as EventTarget['addEventListener'];
  win.WebSocket = NodeWebSocket;
  Object.assign(globalThis, {
    window: win,
    document: { location: { href: PAGE_URL } },
    WebSocket: NodeWebSocket,
    XMLHttpRequest: NodeXhr,
  });
}
