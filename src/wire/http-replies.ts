import type { ServerResponse } from 'node:http';
import { closeText, longPollStatus, type PushCode } from '../errors/close-codes.ts';

/**
 * The exact HTTP replies of Push server 2.0 (spec §1.4). Every reply carries
 * `Access-Control-Allow-Origin: *`; long-poll 304s and errors also expose
 * `Last-Message-Id`, which the official client reads cross-origin.
 */

/** Clients trust Last-Message-Id only when Expires is exactly this. */
export const EXPIRES_SENTINEL = 'Thu, 01 Jan 1973 11:11:01 GMT';

export const CONTENT_TEXT = 'text/plain';
export const CONTENT_BINARY = 'application/octet-stream';

/** Long-poll 200 with messages, and publish / REST / stat replies. */
export function sendBody(res: ServerResponse, status: number, body: Uint8Array | string, contentType: string): void {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  res.writeHead(status, {
    'Content-Type': contentType,
    'Access-Control-Allow-Origin': '*',
    'Content-Length': length,
  });
  res.end(body);
}

/** Long-poll timeout: 304 with the sentinel Expires and the client's resume point. */
export function sendNotModified(res: ServerResponse, lastMessageId: string): void {
  res.writeHead(304, {
    'Content-Type': CONTENT_TEXT,
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Last-Message-Id',
    'Last-Message-Id': lastMessageId,
    Expires: EXPIRES_SENTINEL,
  });
  res.end();
}

/** "<code>: <reason>" with the code's status (400, or 429 for 4029), as the reference closes. */
export function sendPushError(res: ServerResponse, code: PushCode): void {
  const body = closeText(code);
  const status = longPollStatus(code);
  res.writeHead(typeof status === 'number' ? status : 400, {
    'Content-Type': CONTENT_TEXT,
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers': 'Last-Message-Id',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** CORS pre-flight on the subscription route: a fixed answer. */
export function sendPreflight(res: ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': CONTENT_TEXT,
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Methods': 'POST, GET, DELETE, OPTIONS',
    'Access-Control-Allow-Headers': 'If-Modified-Since, If-None-Match',
    'Content-Length': 0,
  });
  res.end();
}

export function sendNotFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': CONTENT_TEXT, 'Access-Control-Allow-Origin': '*', 'Content-Length': 0 });
  res.end();
}

/** jetpull's own failures (overload, storage unreachable): status and a short plain-text reason. */
export function sendPlain(res: ServerResponse, status: number, reason: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': CONTENT_TEXT,
    'Access-Control-Allow-Origin': '*',
    'Content-Length': Buffer.byteLength(reason),
    ...extra,
  });
  res.end(reason);
}

/** A client over its request rate (api/client-rate.ts): 429, and when to come back. */
export function sendTooManyRequests(res: ServerResponse, waitMs: number, extra: Record<string, string> = {}): void {
  sendPlain(res, 429, 'Too many requests.', { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))), ...extra });
}

/**
 * A refused WebSocket handshake, byte for byte what Push server 2.0 (ws 4) wrote:
 * `400 Bad Request`, `Content-type: text/html`, body `Wrong Channel Id.`.
 */
export function rawHandshakeRefusal(status: number, statusText: string, message: string, headers: Record<string, string> = {}): string {
  return (
    `HTTP/1.1 ${status} ${statusText}\r\n` +
    'Connection: close\r\n' +
    'Content-type: text/html\r\n' +
    Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    `Content-Length: ${Buffer.byteLength(message)}\r\n` +
    '\r\n' +
    message
  );
}
