import { Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { Listeners, type Listener } from './listeners.ts';
import { PAGE_ORIGIN, PAGE_URL } from './page.ts';
import { copyBytes, tapFor, type LiveRequest, type PublishRecord, type Tap } from './tap.ts';

const UNSENT = 0;
const OPENED = 1;
const HEADERS_RECEIVED = 2;
const LOADING = 3;
const DONE = 4;

/** Not keep-alive, so an aborted poll closes its TCP connection as a browser tab does. */
const agent = new Agent({ keepAlive: false });

/** Response headers a cross-origin page may read without Access-Control-Expose-Headers. */
const CORS_SAFELISTED = new Set(['cache-control', 'content-language', 'content-length', 'content-type', 'expires', 'last-modified', 'pragma']);

/**
 * The browser XMLHttpRequest as the long-polling connector uses it (`open`, `send`,
 * `abort`, `readyState`, `status`, `response`, `responseType = 'arraybuffer'`,
 * `getResponseHeader`, 'readystatechange'), over node:http, with the browser's
 * abort semantics and the CORS rules of a cross-origin page: a response without a
 * matching Access-Control-Allow-Origin is a network error, and only safelisted or
 * exposed headers are readable (the 304's Last-Message-Id needs
 * Access-Control-Expose-Headers).
 */
export class NodeXhr implements LiveRequest {
  readyState = UNSENT;
  status = 0;
  responseType: '' | 'text' | 'arraybuffer' = '';
  response: string | ArrayBuffer | null = '';

  private readonly listeners = new Listeners((err) => this.tap?.handlerErrors.push(err));
  private method = 'GET';
  private url = '';
  private crossOrigin = false;
  private sendFlag = false;
  /** Bumped whenever the request on the wire is forgotten: its late events are then ignored. */
  private generation = 0;
  private req: ClientRequest | null = null;
  private resHeaders: IncomingHttpHeaders = {};
  private tap: Tap | undefined;
  /** Set for a request other than a GET (a client publish), which is recorded apart from the polls. */
  private publish: PublishRecord | null = null;

  /** A long poll (a GET) is on the wire. */
  get inFlight(): boolean {
    return this.sendFlag && this.method === 'GET';
  }

  addEventListener(type: string, fn: Listener): void {
    this.listeners.add(type, fn);
  }

  open(method: string, url: string | URL): void {
    this.cancelRequest();
    this.method = method.toUpperCase();
    this.url = new URL(String(url), PAGE_URL).href;
    this.crossOrigin = new URL(this.url).origin !== PAGE_ORIGIN;
    this.sendFlag = false;
    this.status = 0;
    this.response = this.emptyResponse();
    this.resHeaders = {};
    this.tap?.requests.delete(this);
    this.tap = tapFor(this.url);
    this.tap?.requests.add(this);
    this.setState(OPENED);
  }

  send(body?: string | ArrayBuffer | ArrayBufferView | null): void {
    if (this.readyState !== OPENED || this.sendFlag) throw new Error('InvalidStateError: send');
    this.sendFlag = true;
    const gen = this.generation;
    const bytes = body === undefined || body === null || this.method === 'GET' ? null : copyBytes(body);
    this.publish = null;
    if (this.method === 'GET') this.tap?.connections.push({ transport: 'longpolling', url: this.url });
    else {
      this.publish = { url: this.url, method: this.method, body: bytes ?? Buffer.alloc(0) };
      this.tap?.publishes.push(this.publish);
    }
    const held = this.tap?.whenReleased();
    if (held) void held.then(() => gen === this.generation && this.startRequest(gen, bytes));
    else this.startRequest(gen, bytes);
  }

  abort(): void {
    this.cancelRequest();
    if ((this.readyState === OPENED && this.sendFlag) || this.readyState === HEADERS_RECEIVED || this.readyState === LOADING) {
      this.failRequest();
    }
    // Once DONE, the browser goes back to UNSENT without an event.
    if (this.readyState === DONE) {
      this.readyState = UNSENT;
      this.response = this.emptyResponse();
    }
  }

  getResponseHeader(name: string): string | null {
    if (this.readyState < HEADERS_RECEIVED) return null;
    const key = name.toLowerCase();
    if (this.crossOrigin && !CORS_SAFELISTED.has(key) && !exposedHeaders(this.resHeaders).has(key)) return null;
    const v = this.resHeaders[key];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : String(v);
  }

  /** Ends the request as a network failure would. */
  failNetwork(): void {
    if (!this.sendFlag) return;
    this.cancelRequest();
    this.failRequest();
  }

  private startRequest(gen: number, body: Buffer | null): void {
    const headers: Record<string, string> = this.crossOrigin ? { Origin: PAGE_ORIGIN } : {};
    const req = httpRequest(this.url, { method: this.method, headers, agent });
    this.req = req;
    const fail = (): void => {
      if (gen === this.generation) this.failRequest();
    };
    req.on('error', fail);
    req.on('response', (res) => {
      if (gen !== this.generation) {
        res.destroy();
        return;
      }
      if (this.crossOrigin && !allowsPage(res.headers)) {
        // A CORS failure is a network error to the page, whatever the status.
        res.destroy();
        this.cancelRequest();
        this.failRequest();
        return;
      }
      this.status = res.statusCode ?? 0;
      this.resHeaders = res.headers;
      this.setState(HEADERS_RECEIVED);
      if (gen !== this.generation) return;
      this.setState(LOADING);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('aborted', fail);
      res.on('end', () => {
        if (gen === this.generation) this.complete(Buffer.concat(chunks), res.headers);
      });
    });
    if (body) req.end(body);
    else req.end();
  }

  private complete(body: Buffer<ArrayBuffer>, headers: IncomingHttpHeaders): void {
    this.req = null;
    this.sendFlag = false;
    if (this.publish) {
      this.publish.status = this.status;
      this.publish.response = body;
    } else {
      this.tap?.pollAnswers.push({ status: this.status, headers, body });
      if (this.status === 200 && body.length > 0) {
        const binary = this.responseType === 'arraybuffer';
        this.tap?.frames.push({ transport: 'longpolling', data: binary ? body : body.toString('utf8'), binary });
      }
    }
    this.response =
      this.responseType === 'arraybuffer' ? body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) : body.toString('utf8');
    this.setState(DONE);
  }

  /** The request error steps: DONE with status 0 and no response. */
  private failRequest(): void {
    if (this.publish && this.publish.status === undefined) this.publish.status = 0;
    this.sendFlag = false;
    this.status = 0;
    this.response = this.emptyResponse();
    this.resHeaders = {};
    this.setState(DONE);
  }

  private cancelRequest(): void {
    this.generation++;
    const req = this.req;
    this.req = null;
    req?.destroy();
  }

  private emptyResponse(): string | null {
    return this.responseType === 'arraybuffer' ? null : '';
  }

  private setState(state: number): void {
    this.readyState = state;
    this.listeners.dispatch({ type: 'readystatechange', target: this });
  }
}

function allowsPage(headers: IncomingHttpHeaders): boolean {
  const acao = headers['access-control-allow-origin'];
  return acao === '*' || acao === PAGE_ORIGIN;
}

function exposedHeaders(headers: IncomingHttpHeaders): Set<string> {
  const v = headers['access-control-expose-headers'];
  const raw = Array.isArray(v) ? v.join(',') : (v ?? '');
  return new Set(
    raw
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );
}
