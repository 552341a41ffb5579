// The SDK is imported before any browser global exists: axios, one of its
// dependencies, reads window.location at import time when both window and document
// are defined (official-client.md §9.1). The shims are installed later, on first use.
import { B24PullClientManager, SubscriptionType, type TypePullClientConfig, type TypePullClientParams } from '@bitrix24/b24jssdk';
import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { WebSocket as WsClient } from 'ws';
import type { TestUser } from './channels.ts';
import { within } from './wait.ts';

/**
 * Drives the real Bitrix pull client (`@bitrix24/b24jssdk`, `B24PullClientManager`)
 * headless in this process against a jetpull listener, as described in
 * /work/shared/protocol/official-client.md §9: a WebSocket built on `ws`, an
 * XMLHttpRequest over node:http, a `window` EventTarget and a `document` whose page
 * origin differs from the push server (so the browser CORS rules apply to the long
 * poll), and a fake `b24` REST client that answers `pull.application.config.get`
 * with a hand-made config (§2.1).
 *
 * The shims record what went over the wire for each client (connection URLs, frames
 * and long-poll answers in, close codes), so tests can check the server side too, and
 * they can hold a client's reconnection back so that messages are published while it
 * is really offline.
 */

export type Transport = 'websocket' | 'longpolling';

export interface OfficialClientOptions {
  /** http://127.0.0.1:<port> of the jetpull listener. */
  base: string;
  /** ws://127.0.0.1:<port> of the jetpull listener. */
  wsBase: string;
  user: TestUser;
  /** The shared channel; left out of CHANNEL_ID when absent. */
  shared?: { id: string; token: string };
  /**
   * `server.version` in the config: ≤ 3 text mode, 4 protobuf (`binaryMode=true`),
   * ≥ 5 JSON-RPC. 3 and 4 are exercised; binary frames are recorded as is and read
   * through the decoder given to `wireMessages()`.
   */
  version?: number;
  /** `websocket` sets `websocket_enabled: true`; `longpolling` sets it false, which is how the client is forced to poll. */
  transport?: Transport;
  /** `server.publish_enabled` (client publishing, v4 only). Default false. */
  publishEnabled?: boolean;
  /** Subscribed module id. The client lower-cases `module_id` before dispatch, so give it in lower case. Default `application`. */
  moduleId?: string;
  /** Subscribe to this one command (the `(params, extra, command, info)` callback form) instead of the whole module. */
  command?: string;
  /** The private channel id handed to the client. Default `user.token` (`priv:pub.sig`). */
  privateChannelId?: string;
  /** Subscription route; the client's `/bitrix/sub/` (long polling) is `/bitrix/subws/` behind nginx. Default `/bitrix/subws/`. */
  subPath?: string;
  /** Client publishing route (`server.publish`). Default `/bitrix/rest/`. */
  publishPath?: string;
  /** Portal user id (> 0). */
  userId?: number;
  /** How long `start()` may take. Default 10 s (a first long poll answers at the server's hold time or after 5 s). */
  startTimeoutMs?: number;
  /**
   * Other users the client may publish to with `sendMessage(userIds, …)` (v4): the
   * fake `b24` answers `pull.channel.public.list` with their public ids and
   * signatures, as the portal does (official-client.md §2).
   */
  publicUsers?: Record<number, TestUser>;
}

/** A client publish over long polling: `POST <server.publish>?CHANNEL_ID=…` and its answer. */
export interface PublishRecord {
  url: string;
  method: string;
  body: Buffer;
  at: number;
  /** Filled once answered; 0 on a network or CORS failure. */
  status?: number;
  headers?: IncomingHttpHeaders;
  response?: Buffer;
}

export interface ReceivedEvent {
  command: string;
  params: Record<string, unknown>;
  extra: Record<string, unknown>;
  info: { type: string; moduleId: string };
  at: number;
}

export interface ConnectionRecord {
  transport: Transport;
  /** The URL exactly as the client built it. */
  url: string;
  at: number;
}

export interface FrameRecord {
  transport: Transport;
  /** WebSocket message, or the body of a long-poll 200. */
  data: string | Buffer;
  binary: boolean;
  at: number;
}

export interface PollAnswer {
  url: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface WireMessage {
  mid: string;
  text: unknown;
  transport: Transport;
  /** Whatever else the binary decoder reported for the message (e.g. sender, created). */
  meta?: Record<string, unknown>;
}

/** What a `wireMessages()` decoder returns for each message of a binary frame. */
export interface DecodedWireMessage {
  mid: string;
  text: unknown;
  meta?: Record<string, unknown>;
}

export interface OfficialClient {
  readonly client: B24PullClientManager;
  /** The config the fake REST call hands to the client. */
  readonly config: TypePullClientConfig;
  /** What reached the subscriber callback, in order. */
  readonly events: ReceivedEvent[];
  /**
   * What reached the `type: 'client'` subscriber of the same module (messages other
   * clients published, `extra.sender.type == 1`), in order.
   */
  readonly clientEvents: ReceivedEvent[];
  /** `type: 'status'` notifications: connect / online / offline. */
  readonly statuses: string[];
  /** Every WebSocket opened and every long poll sent by this client. */
  readonly connections: ConnectionRecord[];
  readonly frames: FrameRecord[];
  /** What the client sent over its WebSockets (v4: binary RequestBatches). */
  readonly sentFrames: FrameRecord[];
  readonly pollAnswers: PollAnswer[];
  /** Client publishes over long polling (XHR POSTs); they are neither connections nor poll answers. */
  readonly publishes: PublishRecord[];
  readonly closes: Array<{ code: number; reason: string; at: number }>;
  /** Exceptions the client threw inside a socket or XHR event handler (a browser only reports them). */
  readonly handlerErrors: unknown[];
  /** REST methods the client called on the fake `b24`. */
  readonly restCalls: string[];
  /**
   * The messages received so far (mid and body), duplicates included, in arrival
   * order. Text frames are parsed here; binary (v4 protobuf) frames only through
   * `decodeBinary`, which returns the `{mid, text}` of each message in a frame (and
   * optionally `meta`, e.g. the protobuf sender and created time, kept as is).
   */
  wireMessages(decodeBinary?: (data: Buffer) => DecodedWireMessage[]): WireMessage[];
  /** Waits until at least `n` events reached the subscriber; returns them all. */
  waitForEvents(n: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  /** Waits until at least `n` events reached the `type: 'client'` subscriber; returns them all. */
  waitForClientEvents(n: number, timeoutMs?: number): Promise<ReceivedEvent[]>;
  /** Waits until one of the client's WebSockets was closed with `code`; returns that close. */
  waitForClose(code: number, timeoutMs?: number): Promise<{ code: number; reason: string; at: number }>;
  /** Waits until the client made at least `n` connections (WebSocket opens or polls). */
  waitForConnections(n: number, timeoutMs?: number): Promise<ConnectionRecord[]>;
  isConnected(): boolean;
  /**
   * Drops the live connection under the client as a network failure would: the
   * WebSocket is terminated without a close frame (the client sees 1006), the held
   * long poll ends with a network error (status 0). Resolves once the client noticed.
   * With `holdReconnect`, the client's next connection (it retries after ~0.5 s by
   * itself) is held back until `releaseReconnect()`.
   */
  disconnect(opts?: { holdReconnect?: boolean; timeoutMs?: number }): Promise<void>;
  releaseReconnect(): void;
  /** The SDK's own debug dump plus what the harness recorded, for failure messages. */
  debugInfo(): Record<string, unknown>;
  /** Destroys the client and waits until its sockets are gone; nothing is left to keep the process alive. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Page origin of the fake browser: another origin than the push server, as in production. */
export const PAGE_URL = 'http://portal.test/';

const CONFIG_TIMESTAMP = 1_700_000_000;
const DEFAULT_START_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------
// Per-client tap: the shims find the client a connection belongs to by a string
// in its URL (the private id), record traffic on it, and hold connections back
// while its gate is closed.

class Tap {
  readonly connections: ConnectionRecord[] = [];
  readonly frames: FrameRecord[] = [];
  readonly sentFrames: FrameRecord[] = [];
  readonly pollAnswers: PollAnswer[] = [];
  readonly publishes: PublishRecord[] = [];
  readonly closes: Array<{ code: number; reason: string; at: number }> = [];
  readonly handlerErrors: unknown[] = [];
  readonly sockets = new Set<NodeWebSocket>();
  readonly xhrs = new Set<NodeXhr>();
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  constructor(readonly match: string) {}

  /** Resolves when new connections may go ahead. */
  gatePassed(): Promise<void> | null {
    return this.gate?.promise ?? null;
  }

  closeGate(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  openGate(): void {
    const g = this.gate;
    this.gate = null;
    g?.open();
  }
}

const taps = new Set<Tap>();

function tapFor(url: string): Tap | undefined {
  for (const t of taps) if (url.includes(t.match)) return t;
  return undefined;
}

function reportHandlerError(tap: Tap | undefined, err: unknown): void {
  // A browser reports an exception thrown in an event listener and goes on; Node's
  // EventEmitter would make it an uncaughtException and wedge the `ws` receiver.
  tap?.handlerErrors.push(err);
}

// ---------------------------------------------------------------------------
// Minimal DOM-style event plumbing shared by the two shims.

type Listener = (this: unknown, ev: ShimEvent) => void;
interface ShimEvent {
  type: string;
  target: unknown;
  [key: string]: unknown;
}

class ListenerSet {
  private readonly byType = new Map<string, Array<{ fn: Listener; once: boolean }>>();

  add(type: string, fn: unknown, options?: unknown): void {
    if (typeof fn !== 'function') return;
    const list = this.byType.get(type) ?? [];
    if (list.some((l) => l.fn === fn)) return;
    const once = typeof options === 'object' && options !== null && (options as { once?: unknown }).once === true;
    list.push({ fn: fn as Listener, once });
    this.byType.set(type, list);
  }

  remove(type: string, fn: unknown): void {
    const list = this.byType.get(type);
    if (!list) return;
    this.byType.set(
      type,
      list.filter((l) => l.fn !== fn),
    );
  }

  dispatch(self: unknown, ev: ShimEvent, handlerProp: unknown, tap: Tap | undefined): void {
    const list = [...(this.byType.get(ev.type) ?? [])];
    for (const l of list) {
      if (l.once) this.remove(ev.type, l.fn);
      try {
        l.fn.call(self, ev);
      } catch (err) {
        reportHandlerError(tap, err);
      }
    }
    if (typeof handlerProp === 'function') {
      try {
        (handlerProp as Listener).call(self, ev);
      } catch (err) {
        reportHandlerError(tap, err);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// WebSocket shim: a browser-like WebSocket over `ws`, built by composition so that
// the real connection can be started later (held reconnect), an 'error' listener is
// always attached, and listener exceptions never escape.

class NodeWebSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;

  readonly url: string;
  binaryType: 'blob' | 'arraybuffer' = 'blob';
  onopen: unknown = null;
  onmessage: unknown = null;
  onclose: unknown = null;
  onerror: unknown = null;

  private inner: WsClient | null = null;
  private ownState = 0;
  private readonly listeners = new ListenerSet();
  private readonly tap: Tap | undefined;

  constructor(url: string | URL, private readonly protocols?: string | string[]) {
    this.url = String(url);
    this.tap = tapFor(this.url);
    if (this.tap) {
      this.tap.sockets.add(this);
      this.tap.connections.push({ transport: 'websocket', url: this.url, at: Date.now() });
    }
    const gate = this.tap?.gatePassed();
    if (gate) void gate.then(() => this.connectInner());
    else this.connectInner();
  }

  get readyState(): number {
    return this.inner ? this.inner.readyState : this.ownState;
  }

  get bufferedAmount(): number {
    return this.inner?.bufferedAmount ?? 0;
  }

  get protocol(): string {
    return this.inner?.protocol ?? '';
  }

  get extensions(): string {
    return this.inner?.extensions ?? '';
  }

  addEventListener(type: string, fn: unknown, options?: unknown): void {
    this.listeners.add(type, fn, options);
  }

  removeEventListener(type: string, fn: unknown): void {
    this.listeners.remove(type, fn);
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (!this.inner || this.inner.readyState === 0) {
      throw new Error("Failed to execute 'send' on 'WebSocket': Still in CONNECTING state.");
    }
    if (typeof data === 'string') this.tap?.sentFrames.push({ transport: 'websocket', data, binary: false, at: Date.now() });
    else {
      const bytes = data instanceof ArrayBuffer ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.tap?.sentFrames.push({ transport: 'websocket', data: Buffer.from(bytes), binary: true, at: Date.now() });
    }
    this.inner.send(data);
  }

  close(code?: number, reason?: string): void {
    if (this.inner) {
      this.inner.close(code, reason);
      return;
    }
    // Still held back by the gate: fail the connection as a browser does.
    if (this.ownState === 3) return;
    this.ownState = 3;
    setImmediate(() => {
      this.fire({ type: 'error', target: this });
      this.onClosed(1006, '');
    });
  }

  /** Drops the TCP connection without a close frame (harness only). */
  terminate(): void {
    if (this.inner) this.inner.terminate();
    else this.close();
  }

  private connectInner(): void {
    if (this.ownState === 3) return;
    const ws = new WsClient(this.url, this.protocols, { origin: new URL(PAGE_URL).origin });
    this.inner = ws;
    ws.on('error', (err) => this.fire({ type: 'error', target: this, error: err, message: err.message }));
    ws.on('open', () => this.fire({ type: 'open', target: this }));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      this.tap?.frames.push({ transport: 'websocket', data: isBinary ? Buffer.from(buf) : buf.toString('utf8'), binary: isBinary, at: Date.now() });
      let payload: unknown;
      if (!isBinary) payload = buf.toString('utf8');
      else if (this.binaryType === 'arraybuffer') payload = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      else payload = new Blob([buf]);
      this.fire({ type: 'message', target: this, data: payload, origin: new URL(this.url).origin });
    });
    ws.on('close', (code: number, reason: Buffer) => this.onClosed(code, reason.toString('utf8')));
  }

  private onClosed(code: number, reason: string): void {
    this.tap?.closes.push({ code, reason, at: Date.now() });
    this.tap?.sockets.delete(this);
    this.fire({ type: 'close', target: this, code, reason, wasClean: code !== 1006 });
  }

  private fire(ev: ShimEvent): void {
    const prop = ev.type === 'open' ? this.onopen : ev.type === 'message' ? this.onmessage : ev.type === 'close' ? this.onclose : this.onerror;
    this.listeners.dispatch(this, ev, prop, this.tap);
  }
}

// ---------------------------------------------------------------------------
// XMLHttpRequest shim over node:http: what the long-polling connector uses
// (open/send/abort, readyState, status, response, responseType 'arraybuffer',
// getResponseHeader, readystatechange), with the browser's abort semantics and the
// CORS response checks of a cross-origin page.

/** Non-keep-alive, so an aborted poll closes its TCP connection as a browser tab does. */
const xhrAgent = new Agent({ keepAlive: false });

const CORS_SAFELISTED = new Set(['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma']);

class NodeXhr {
  static readonly UNSENT = 0;
  static readonly OPENED = 1;
  static readonly HEADERS_RECEIVED = 2;
  static readonly LOADING = 3;
  static readonly DONE = 4;
  readonly UNSENT = 0;
  readonly OPENED = 1;
  readonly HEADERS_RECEIVED = 2;
  readonly LOADING = 3;
  readonly DONE = 4;

  readyState = 0;
  status = 0;
  statusText = '';
  responseType: '' | 'text' | 'arraybuffer' = '';
  response: string | ArrayBuffer | null = '';
  responseURL = '';
  withCredentials = false;
  timeout = 0;
  onreadystatechange: unknown = null;
  onload: unknown = null;
  onerror: unknown = null;
  onabort: unknown = null;
  onloadend: unknown = null;

  private readonly listeners = new ListenerSet();
  private method = 'GET';
  private url = '';
  private requestHeaders: Record<string, string> = {};
  private sendFlag = false;
  private generation = 0;
  private req: ClientRequest | null = null;
  private resHeaders: IncomingHttpHeaders = {};
  private crossOrigin = false;
  private tap: Tap | undefined;
  /** Set for a request other than a GET (a client publish): recorded apart from the polls. */
  private publishRecord: PublishRecord | null = null;

  get responseText(): string {
    return typeof this.response === 'string' ? this.response : '';
  }

  /** True while a long poll (a GET) is on the wire (harness only). */
  get inFlight(): boolean {
    return this.sendFlag && this.method === 'GET';
  }

  addEventListener(type: string, fn: unknown, options?: unknown): void {
    this.listeners.add(type, fn, options);
  }

  removeEventListener(type: string, fn: unknown): void {
    this.listeners.remove(type, fn);
  }

  open(method: string, url: string | URL): void {
    this.cancelRequest();
    this.method = method.toUpperCase();
    this.url = new URL(String(url), PAGE_URL).href;
    this.crossOrigin = new URL(this.url).origin !== new URL(PAGE_URL).origin;
    this.requestHeaders = {};
    this.sendFlag = false;
    this.status = 0;
    this.statusText = '';
    this.response = this.emptyResponse();
    this.resHeaders = {};
    if (this.tap) this.tap.xhrs.delete(this);
    this.tap = tapFor(this.url);
    this.tap?.xhrs.add(this);
    this.setState(1);
  }

  setRequestHeader(name: string, value: string): void {
    if (this.readyState !== 1 || this.sendFlag) throw new Error('InvalidStateError: setRequestHeader');
    this.requestHeaders[name] = value;
  }

  send(body?: string | ArrayBuffer | ArrayBufferView | null): void {
    if (this.readyState !== 1 || this.sendFlag) throw new Error('InvalidStateError: send');
    this.sendFlag = true;
    const gen = this.generation;
    this.publishRecord = null;
    if (this.method === 'GET') this.tap?.connections.push({ transport: 'longpolling', url: this.url, at: Date.now() });
    else {
      this.publishRecord = { url: this.url, method: this.method, body: bodyBytes(body), at: Date.now() };
      this.tap?.publishes.push(this.publishRecord);
    }
    const gate = this.tap?.gatePassed();
    if (gate) void gate.then(() => gen === this.generation && this.startRequest(gen, body));
    else this.startRequest(gen, body);
  }

  abort(): void {
    this.cancelRequest();
    if ((this.readyState === 1 && this.sendFlag) || this.readyState === 2 || this.readyState === 3) {
      this.finishWithError('abort');
    }
    // The browser goes back to UNSENT without an event once DONE.
    if (this.readyState === 4) {
      this.readyState = 0;
      this.response = this.emptyResponse();
    }
  }

  getResponseHeader(name: string): string | null {
    if (this.readyState < 2) return null;
    const key = name.toLowerCase();
    if (this.crossOrigin && !CORS_SAFELISTED.has(key) && !this.exposedHeaders().has(key)) return null;
    const v = this.resHeaders[key];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : String(v);
  }

  getAllResponseHeaders(): string {
    if (this.readyState < 2) return '';
    return Object.keys(this.resHeaders)
      .map((k) => {
        const v = this.getResponseHeader(k);
        return v === null ? '' : `${k}: ${v}\r\n`;
      })
      .join('');
  }

  overrideMimeType(): void {}

  /** Ends the request on the wire as a network failure would (harness only). */
  failNetwork(): void {
    if (!this.sendFlag) return;
    this.cancelRequest();
    this.finishWithError('error');
  }

  private startRequest(gen: number, body: string | ArrayBuffer | ArrayBufferView | null | undefined): void {
    const headers: Record<string, string> = { ...this.requestHeaders };
    if (this.crossOrigin) headers.Origin = new URL(PAGE_URL).origin;
    const req = httpRequest(this.url, { method: this.method, headers, agent: xhrAgent });
    this.req = req;
    req.on('error', () => gen === this.generation && this.finishWithError('error'));
    req.on('response', (res) => {
      if (gen !== this.generation) {
        res.destroy();
        return;
      }
      if (this.crossOrigin) {
        const acao = res.headers['access-control-allow-origin'];
        if (acao !== '*' && acao !== new URL(PAGE_URL).origin) {
          // CORS failure: a network error to the page, whatever the status.
          res.destroy();
          this.cancelRequest();
          this.finishWithError('error');
          return;
        }
      }
      const chunks: Buffer[] = [];
      this.status = res.statusCode ?? 0;
      this.statusText = res.statusMessage ?? '';
      this.resHeaders = res.headers;
      this.responseURL = this.url;
      this.setState(2);
      if (gen !== this.generation) return;
      this.setState(3);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => gen === this.generation && this.finishWithError('error'));
      res.on('aborted', () => gen === this.generation && this.finishWithError('error'));
      res.on('end', () => {
        if (gen !== this.generation) return;
        const buf = Buffer.concat(chunks);
        this.req = null;
        this.sendFlag = false;
        if (this.publishRecord) {
          this.publishRecord.status = this.status;
          this.publishRecord.headers = res.headers;
          this.publishRecord.response = buf;
        } else this.tap?.pollAnswers.push({ url: this.url, status: this.status, headers: res.headers, body: buf, at: Date.now() });
        if (!this.publishRecord && this.status === 200 && buf.length > 0) {
          const binary = this.responseType === 'arraybuffer';
          this.tap?.frames.push({ transport: 'longpolling', data: binary ? buf : buf.toString('utf8'), binary, at: Date.now() });
        }
        this.response =
          this.responseType === 'arraybuffer' ? buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) : buf.toString('utf8');
        this.setState(4);
        if (gen !== this.generation) return;
        this.fire('load');
        if (gen !== this.generation) return;
        this.fire('loadend');
      });
    });
    if (body === undefined || body === null || this.method === 'GET' || this.method === 'HEAD') req.end();
    else if (typeof body === 'string') req.end(body);
    else if (body instanceof ArrayBuffer) req.end(Buffer.from(body));
    else req.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  }

  /** The request error steps: DONE with status 0, then the named event. */
  private finishWithError(kind: 'error' | 'abort'): void {
    if (this.publishRecord && this.publishRecord.status === undefined) this.publishRecord.status = 0;
    this.sendFlag = false;
    this.status = 0;
    this.statusText = '';
    this.response = this.emptyResponse();
    this.resHeaders = {};
    const gen = this.generation;
    this.setState(4);
    if (gen !== this.generation) return;
    this.fire(kind);
    if (gen !== this.generation) return;
    this.fire('loadend');
  }

  /** Forgets the request on the wire; its late events are ignored. */
  private cancelRequest(): void {
    this.generation++;
    const req = this.req;
    this.req = null;
    req?.destroy();
  }

  private emptyResponse(): string | null {
    return this.responseType === 'arraybuffer' ? null : '';
  }

  private exposedHeaders(): Set<string> {
    const v = this.resHeaders['access-control-expose-headers'];
    const raw = Array.isArray(v) ? v.join(',') : (v ?? '');
    return new Set(
      raw
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    );
  }

  private setState(state: number): void {
    this.readyState = state;
    this.fire('readystatechange');
  }

  private fire(type: string): void {
    const prop = (this as unknown as Record<string, unknown>)[`on${type}`];
    this.listeners.dispatch(this, { type, target: this }, prop, this.tap);
  }
}

function bodyBytes(body: string | ArrayBuffer | ArrayBufferView | null | undefined): Buffer {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof ArrayBuffer) return Buffer.from(body.slice(0));
  return Buffer.from(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

// ---------------------------------------------------------------------------

let shimsInstalled = false;

/** Installs the browser globals the pull client needs (once per process). */
export function installBrowserShims(): void {
  if (shimsInstalled) return;
  shimsInstalled = true;
  const g = globalThis as unknown as Record<string, unknown>;
  const win = new EventTarget() as EventTarget & Record<string, unknown>;
  // Every client's SharedConfig adds a bound `storage` listener that it never removes
  // (one per page in a browser). There is no localStorage here, so the event never
  // fires: dropping those listeners keeps destroyed clients from piling up on
  // `window` (and Node from warning about a listener leak past ten clients).
  const addListener = win.addEventListener.bind(win);
  win.addEventListener = ((type: string, ...rest: unknown[]) => {
    if (type === 'storage') return;
    (addListener as (...a: unknown[]) => void)(type, ...rest);
  }) as EventTarget['addEventListener'];
  win.WebSocket = NodeWebSocket;
  win.XMLHttpRequest = NodeXhr;
  win.location = { href: PAGE_URL };
  g.WebSocket = NodeWebSocket;
  g.XMLHttpRequest = NodeXhr;
  g.window = win;
  g.document = { location: { href: PAGE_URL } };
}

/** The config as `pull.application.config.get` returns it (official-client.md §2.1), without `serverTime`. */
export function buildPullConfig(opts: OfficialClientOptions): TypePullClientConfig {
  const now = Date.now();
  const start = new Date(now - 60_000).toISOString();
  const end = new Date(now + 12 * 3_600_000).toISOString();
  const subPath = opts.subPath ?? '/bitrix/subws/';
  const publishPath = opts.publishPath ?? '/bitrix/rest/';
  const secure = (u: string): string => u.replace(/^http:/, 'https:').replace(/^ws:/, 'wss:');
  const channels: Record<string, unknown> = {
    private: {
      id: opts.privateChannelId ?? opts.user.token,
      public_id: opts.user.publicAddress,
      start,
      end,
      type: 'private',
    },
  };
  if (opts.shared) channels.shared = { id: opts.shared.token, start, end, type: 'shared' };
  const config = {
    server: {
      version: opts.version ?? 3,
      websocket_enabled: (opts.transport ?? 'websocket') === 'websocket',
      websocket: `${opts.wsBase}${subPath}`,
      websocket_secure: secure(`${opts.wsBase}${subPath}`),
      long_polling: `${opts.base}${subPath}`,
      long_pooling_secure: secure(`${opts.base}${subPath}`), // sic: the client reads "pooling"
      publish_enabled: opts.publishEnabled ?? false,
      publish: `${opts.base}${publishPath}`,
      publish_secure: secure(`${opts.base}${publishPath}`),
      // Must be present and stable: the client compares it every 60 s and restarts on a change.
      config_timestamp: CONFIG_TIMESTAMP,
      mode: 'personal',
      server_enabled: true,
    },
    api: { revision_web: 19, revision_mobile: 3 },
    channels,
    publicChannels: {},
    clientId: null,
    jwt: null,
    exp: 0,
  };
  // The SDK's config type is narrower than what the server sends (e.g. no `type` on
  // channels, `timeShift` filled in by the client itself).
  return config as unknown as TypePullClientConfig;
}

/** Starts the official client against jetpull and waits until it is connected. */
export async function startOfficialClient(opts: OfficialClientOptions): Promise<OfficialClient> {
  installBrowserShims();
  const config = buildPullConfig(opts);
  const transport: Transport = opts.transport ?? 'websocket';
  const moduleId = opts.moduleId ?? 'application';
  const tap = new Tap(opts.user.priv);
  taps.add(tap);

  const events: ReceivedEvent[] = [];
  const clientEvents: ReceivedEvent[] = [];
  const statuses: string[] = [];
  const restCalls: string[] = [];

  const ok = (result: unknown): { getData: () => { result: unknown } } => ({ getData: () => ({ result }) });
  const b24 = {
    actions: {
      v2: {
        call: {
          make: async ({ method }: { method: string; params?: unknown }) => {
            restCalls.push(method);
            if (method.endsWith('config.get')) return ok({ ...structuredClone(config), serverTime: new Date().toISOString() });
            return ok({});
          },
        },
      },
    },
    callMethod: async (method: string, params?: { users?: unknown[] }) => {
      restCalls.push(method);
      if (method === 'pull.channel.public.list') return ok(publicList(opts.publicUsers ?? {}, params?.users ?? []));
      return ok({});
    },
  };

  const client = new B24PullClientManager({
    // Only the two REST entry points above are used by the pull client; the full
    // TypeB24 interface (HTTP clients, auth, batch, …) is not needed.
    b24: b24 as unknown as TypePullClientParams['b24'],
    restApplication: 'jetpull_test',
    userId: opts.userId ?? 1,
  });

  const unsubscribe: Array<() => void> = [];
  const record = (command: string, params: unknown, extra: unknown, info: unknown, into = events): void => {
    into.push({
      command,
      params: (params ?? {}) as Record<string, unknown>,
      extra: (extra ?? {}) as Record<string, unknown>,
      info: info as ReceivedEvent['info'],
      at: Date.now(),
    });
  };
  if (opts.command) {
    unsubscribe.push(
      client.subscribe({
        moduleId,
        command: opts.command,
        callback: (params: unknown, extra: unknown, command: string, info: unknown) => record(command, params, extra, info),
      }),
    );
  } else {
    unsubscribe.push(
      client.subscribe({
        moduleId,
        callback: (data: { command: string; params: unknown; extra: unknown }, info: unknown) =>
          record(data.command, data.params, data.extra, info),
      }),
    );
  }
  unsubscribe.push(
    client.subscribe({
      type: SubscriptionType.Client,
      moduleId,
      callback: (data: { command: string; params: unknown; extra: unknown }, info: unknown) =>
        record(data.command, data.params, data.extra, info, clientEvents),
    }),
  );
  unsubscribe.push(
    client.subscribe({
      type: SubscriptionType.Status,
      callback: (data: { status: string }) => statuses.push(data.status),
    }),
  );

  let stopped = false;
  const summary = (): Record<string, unknown> => ({
    transport,
    connected: client.isConnected(),
    statuses: [...statuses],
    connections: tap.connections.map((c) => `${c.transport} ${redact(c.url, opts)}`),
    closes: tap.closes.map((c) => `${c.code} ${c.reason}`),
    pollAnswers: tap.pollAnswers.map((a) => `${a.status} ${a.body.length}B lmid=${String(a.headers['last-message-id'] ?? '-')}`),
    frames: tap.frames.length,
    events: events.map((e) => `${e.command} ${JSON.stringify(e.params)}`),
    clientEvents: clientEvents.map((e) => `${e.command} ${JSON.stringify(e.params)} ${JSON.stringify(e.extra.sender)}`),
    sentFrames: tap.sentFrames.length,
    publishes: tap.publishes.map((p) => `${p.method} ${redact(p.url, opts)} ${p.body.length}B -> ${String(p.status ?? 'pending')}`),
    handlerErrors: tap.handlerErrors.map(String),
    restCalls: [...restCalls],
  });

  const handle: OfficialClient = {
    client,
    config,
    events,
    clientEvents,
    statuses,
    connections: tap.connections,
    frames: tap.frames,
    sentFrames: tap.sentFrames,
    pollAnswers: tap.pollAnswers,
    publishes: tap.publishes,
    closes: tap.closes,
    handlerErrors: tap.handlerErrors,
    restCalls,

    wireMessages(decodeBinary) {
      const out: WireMessage[] = [];
      for (const f of tap.frames) {
        if (f.binary || typeof f.data !== 'string') {
          if (decodeBinary) for (const m of decodeBinary(Buffer.from(f.data))) out.push({ ...m, transport: f.transport });
          continue;
        }
        for (const m of f.data.matchAll(/#!NGINXNMS!#(.*?)#!NGINXNME!#/g)) {
          try {
            const env = JSON.parse(m[1]!) as { mid?: unknown; text?: unknown };
            out.push({ mid: String(env.mid), text: env.text, transport: f.transport });
          } catch {
            out.push({ mid: '(unparsable frame)', text: m[1], transport: f.transport });
          }
        }
      }
      return out;
    },

    async waitForEvents(n, timeoutMs = 5_000) {
      await waitUntil(() => events.length >= n, timeoutMs, () => `${n} events`, summary);
      return events;
    },

    async waitForClientEvents(n, timeoutMs = 5_000) {
      await waitUntil(() => clientEvents.length >= n, timeoutMs, () => `${n} client events`, summary);
      return clientEvents;
    },

    async waitForClose(code, timeoutMs = 5_000) {
      await waitUntil(() => tap.closes.some((c) => c.code === code), timeoutMs, () => `a close with code ${code}`, summary);
      return tap.closes.find((c) => c.code === code)!;
    },

    async waitForConnections(n, timeoutMs = 5_000) {
      await waitUntil(() => tap.connections.length >= n, timeoutMs, () => `${n} connections`, summary);
      return tap.connections;
    },

    isConnected: () => client.isConnected(),

    async disconnect({ holdReconnect = false, timeoutMs = 5_000 } = {}) {
      if (holdReconnect) tap.closeGate();
      let dropped = 0;
      if (transport === 'websocket') {
        for (const s of tap.sockets) {
          if (s.readyState === NodeWebSocket.OPEN) {
            s.terminate();
            dropped++;
          }
        }
      } else {
        for (const x of tap.xhrs) {
          if (x.inFlight) {
            x.failNetwork();
            dropped++;
          }
        }
      }
      if (dropped === 0) throw new Error(`no live ${transport} connection to drop: ${JSON.stringify(summary())}`);
      await waitUntil(() => !client.isConnected(), timeoutMs, () => 'the client to notice the drop', summary);
    },

    releaseReconnect() {
      tap.openGate();
    },

    debugInfo() {
      const sdk = { ...(client.getDebugInfo() as Record<string, unknown>) };
      delete sdk['Watch tags']; // an iterator
      return { sdk, ...summary() };
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const u of unsubscribe) u();
      // destroy(): stop(1000, 'manual stop'), every SDK timer (60 s config check,
      // reconnect, offline status…) cleared, window listeners removed.
      client.destroy();
      tap.openGate();
      const deadline = Date.now() + 2_000;
      while (tap.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const s of tap.sockets) s.terminate();
      for (const x of tap.xhrs) x.abort();
      taps.delete(tap);
    },

    [Symbol.asyncDispose]: () => handle.stop(),
  };

  try {
    await withTimeout(client.start(), opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS, 'client.start()', summary);
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

/** `pull.channel.public.list` as the portal answers it: `{<uid>: {user_id, public_id, signature, start, end}}`. */
function publicList(users: Record<number, TestUser>, asked: unknown[]): Record<string, unknown> {
  const now = Date.now();
  const out: Record<string, unknown> = {};
  for (const raw of asked) {
    const uid = Number(raw);
    const u = users[uid];
    if (!u) continue;
    const [publicId, signature] = u.publicAddress.split('.');
    out[String(uid)] = {
      user_id: uid,
      public_id: publicId,
      signature,
      start: new Date(now - 60_000).toISOString(),
      end: new Date(now + 12 * 3_600_000).toISOString(),
    };
  }
  return out;
}

function redact(url: string, opts: OfficialClientOptions): string {
  return url.replaceAll(opts.user.priv, '<priv>').replace(/CHANNEL_ID=[^&]*/, (m) => m.slice(0, 30) + '…');
}

async function waitUntil(
  cond: () => boolean,
  timeoutMs: number,
  what: () => string,
  summary: () => Record<string, unknown>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}: ${JSON.stringify(summary(), null, 1)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `within`, with the client's state attached to the error for diagnosis. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, summary: () => Record<string, unknown>): Promise<T> {
  return within(what, p, ms).catch((e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : `${what} failed: ${JSON.stringify(e)}`}: ${JSON.stringify(summary(), null, 1)}`, { cause: e });
  });
}
