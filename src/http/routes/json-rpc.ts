import type { ServerResponse } from 'node:http';
import { answerRpc, type RpcCaller, type RpcMethods } from '../../gateway/client-requests.ts';
import type { Logger } from '../../log/logger.ts';
import { CONTENT_TEXT, sendBody } from '../../wire/http-replies.ts';
import { joinRequests, parseClientText, rpcError } from '../../wire/json-rpc.ts';

const MACK = /^mack:[0-9a-f]{1,64}$/;

/**
 * Whether a client's POST body is protocol 5 text rather than a protobuf RequestBatch:
 * a `mack:<mid>`, or a JSON object or array (a RequestBatch starts with its field 1,
 * 0x0a). Anything else, garbage that merely starts like JSON included, is read as
 * protobuf and refused with the protocol's code.
 */
export function isJsonRpcBody(body: Buffer): boolean {
  const first = body[0];
  if (first === 0x6d) return MACK.test(body.toString('latin1'));
  if (first !== 0x7b && first !== 0x5b) return false;
  try {
    JSON.parse(body.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/**
 * A protocol 5 long-poll client's POST to the client route: `mack:<mid>` (its
 * acknowledgement of a message) answered 200 and empty, method calls answered in the
 * body as a WebSocket would answer them (the official client sends them without
 * reading the reply; other clients can).
 */
export async function handleRpcPost(res: ServerResponse, body: Buffer, caller: RpcCaller, methods: RpcMethods, log: Logger): Promise<void> {
  const said = parseClientText(body.toString('utf8'));
  if (said.kind === 'invalid') return sendBody(res, 200, rpcError(null, said.code, said.message), CONTENT_TEXT);
  if (said.kind !== 'requests') return sendBody(res, 200, '', CONTENT_TEXT);
  const replies: Buffer[] = [];
  for (const request of said.requests) {
    const reply = await answerRpc(request, () => methods.call(request.method, request.params, caller), log);
    if (reply !== undefined) replies.push(reply);
  }
  sendBody(res, 200, replies.length === 0 ? '' : joinRequests(replies), CONTENT_TEXT);
}
