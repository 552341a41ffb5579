import type { ServerResponse } from 'node:http';
import type { BackendRpcMethods } from '../../api/backend-json-rpc.ts';
import { CloseCode } from '../../errors/close-codes.ts';
import { answerRpc } from '../../gateway/client-requests.ts';
import type { Logger } from '../../log/logger.ts';
import type { Signer } from '../../wire/channel-id.ts';
import { CONTENT_TEXT, sendBody, sendPushError } from '../../wire/http-replies.ts';
import { jsonArray, parseClientText, RpcErrorCode, rpcError } from '../../wire/json-rpc.ts';
import { single, type ParsedUrl } from '../request.ts';

export interface BackendRpcRouteDeps {
  methods: BackendRpcMethods;
  signer: Signer;
  log: Logger;
}

const HOST_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * `POST /bitrix/api/?hostId=…&signature=<HMAC of the body>`: a protocol 5 portal's
 * JSON-RPC request or batch (`Bitrix\Pull\JsonRpcTransport`). Its requests carry no
 * id, yet the portal reads a response object (and an empty body is an error to it), so
 * every request is answered, in order, with `id` null when it had none; a batch gets
 * an array. The body is signed with the portal's key, always: without a key configured
 * or with a wrong signature, 400 `4026` and nothing is done.
 */
export async function handleBackendRpc(res: ServerResponse, url: ParsedUrl, body: Buffer, deps: BackendRpcRouteDeps): Promise<void> {
  const signature = single(url.query, 'signature');
  if (typeof signature !== 'string' || !deps.signer.verifyHexBytes(body, signature)) {
    deps.log.info({ closeCode: CloseCode.WrongRequestSignature }, 'backend call refused');
    return sendPushError(res, CloseCode.WrongRequestSignature);
  }
  const hostId = single(url.query, 'hostId');
  if (typeof hostId !== 'string' || !HOST_ID.test(hostId)) return sendPushError(res, CloseCode.WrongRequestData);
  const text = body.toString('utf8');
  const said = parseClientText(text);
  if (said.kind !== 'requests') {
    const r = said.kind === 'invalid' ? said : { code: RpcErrorCode.InvalidRequest, message: 'Invalid Request' };
    return sendBody(res, 200, rpcError(null, r.code, r.message), CONTENT_TEXT);
  }
  const replies: Buffer[] = [];
  for (const request of said.requests) {
    replies.push((await answerRpc(request, () => deps.methods.call(request.method, request.params, hostId), deps.log, { answerAll: true, logFields: { hostId } }))!);
  }
  const batch = text.trimStart().startsWith('[');
  sendBody(res, 200, batch || replies.length !== 1 ? jsonArray(replies) : replies[0]!, CONTENT_TEXT);
}
