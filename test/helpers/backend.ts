/** A text publish as the PHP module sends it. */
export async function publishText(
  base: string,
  channels: string,
  body: string,
  expirySec?: number,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/bitrix/pub/?CHANNEL_ID=${channels}`, {
    method: 'POST',
    body,
    headers: { ...(expirySec === undefined ? {} : { 'Message-Expiry': String(expirySec) }), ...headers },
  });
}
