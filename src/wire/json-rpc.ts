import { isUtf8 } from 'node:buffer';

/**
 * Protocol version 5 framing (`jsonRpc=true`, official-client.md §5.3–5.5): JSON-RPC
 * 2.0 text both ways, plus three bare words. The server sends `ping` (the client
 * answers `pong`, and closes 3005 when no ping came for 20 s after one) and one method,
 * `incoming.message`; the client acknowledges each message with `mack:<mid>` and calls
 * methods of its own (answered with the request's id).
 */

export const TEXT_PING = Buffer.from('ping', 'latin1');

/** JSON-RPC 2.0's own error codes. */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
} as const;

/**
 * `{"jsonrpc":"2.0","method":"incoming.message","params":{"mid","body","sender"}}`.
 * The body goes as published when it is a JSON object in valid UTF-8, re-serialized
 * when it is an object in some other spelling; anything else (not JSON, an array, a
 * string) is undefined: the client reads `body.extra` and `body.params` of every
 * message, and one that is not an object would break its whole batch.
 */
export function encodeIncomingMessage(mid: string, body: Uint8Array, senderId: string | undefined): Buffer | undefined {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const valid = isUtf8(buf);
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const sender = senderId === undefined ? '{"type":2,"id":""}' : `{"type":1,"id":"${senderId}"}`;
  const head = Buffer.from(`{"jsonrpc":"2.0","method":"incoming.message","params":{"mid":"${mid}","body":`, 'latin1');
  const tail = Buffer.from(`,"sender":${sender}}}`, 'latin1');
  const json = valid ? buf : Buffer.from(JSON.stringify(parsed), 'utf8');
  return Buffer.concat([head, json, tail]);
}

/** Several requests as one text: one alone, more as a JSON-RPC batch (an array). */
export function joinRequests(list: readonly Buffer[]): Buffer {
  return list.length === 1 ? list[0]! : jsonArray(list);
}

/** JSON texts as one array. */
export function jsonArray(list: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN];
  list.forEach((b, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(b);
  });
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** A method call from the client; `id` absent: a notification, never answered. */
export interface RpcRequest {
  readonly method: string;
  readonly params: unknown;
  readonly id: string | number | undefined;
}

export type ClientText =
  | { kind: 'pong' }
  | { kind: 'mack'; mid: string }
  | { kind: 'requests'; requests: readonly RpcRequest[] }
  /** Not JSON, or JSON that is no request: answered with `error` and id null. */
  | { kind: 'invalid'; code: number; message: string };

const MACK = /^mack:([0-9a-f]{1,64})$/;

/** What a client's text frame (or v5 long-poll request body) says. */
export function parseClientText(text: string): ClientText {
  if (text === 'pong') return { kind: 'pong' };
  if (text.startsWith('mack:')) {
    const m = MACK.exec(text);
    return m === null ? { kind: 'invalid', code: RpcErrorCode.InvalidRequest, message: 'malformed mack' } : { kind: 'mack', mid: m[1]! };
  }
  let decoded: unknown;
  try {
    decoded = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: RpcErrorCode.ParseError, message: 'Parse error' };
  }
  const items = Array.isArray(decoded) ? decoded : [decoded];
  const requests: RpcRequest[] = [];
  for (const item of items) {
    const r = asRequest(item);
    // A response from the client (the server sends it no requests that expect one) is ignored.
    if (r === 'response') continue;
    if (r === undefined) return { kind: 'invalid', code: RpcErrorCode.InvalidRequest, message: 'Invalid Request' };
    requests.push(r);
  }
  return { kind: 'requests', requests };
}

function asRequest(item: unknown): RpcRequest | 'response' | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const o = item as Record<string, unknown>;
  if (o.jsonrpc !== '2.0') return undefined;
  const id = o.id;
  if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') return undefined;
  if (o.method === undefined && ('result' in o || 'error' in o)) return 'response';
  if (typeof o.method !== 'string' || o.method === '') return undefined;
  return { method: o.method, params: o.params, id: id === null ? undefined : id };
}

export function rpcResult(id: string | number | null, result: unknown): Buffer {
  return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, result }), 'utf8');
}

export function rpcError(id: string | number | null, code: number, message: string): Buffer {
  return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }), 'utf8');
}

/** A call answered with a JSON-RPC error: its code and message go to the client as they are. */
export class RpcFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcFailure';
  }
}
