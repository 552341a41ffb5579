import { isUserId } from '../wire/jwt.ts';
import { RpcErrorCode, RpcFailure } from '../wire/json-rpc.ts';

/** Reading JSON-RPC params: what does not fit is the call's `-32602 Invalid params`. */

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function invalid(message: string): never {
  throw new RpcFailure(RpcErrorCode.InvalidParams, message);
}

/** The params object itself. */
export function paramsOf(params: unknown): Record<string, unknown> {
  return isObject(params) ? params : invalid('params must be an object');
}

/** An optional array (absent: empty). */
export function listOf(v: unknown, name: string): unknown[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : invalid(`${name} must be an array`);
}

/** User ids (numbers or numeric strings, as the portal and the client send them) as strings, at most `max`. */
export function userIdsOf(v: unknown, name: string, max: number): string[] {
  const list = listOf(v, name);
  if (list.length > max) invalid(`more than ${max} users in ${name}`);
  return list.map((u) => userIdOf(u, name));
}

export function userIdOf(v: unknown, name: string): string {
  const id = typeof v === 'number' || typeof v === 'string' ? String(v) : '';
  return isUserId(id) ? id : invalid(`${name}: not a user id`);
}
