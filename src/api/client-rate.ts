import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import { KeyedRate } from '../util/keyed-rate.ts';

/**
 * Request rates of untrusted clients on this process: per public id (the signed
 * identity every client request carries) for binary WebSocket frames and
 * POST /bitrix/rest/, and per client address for POST /bitrix/rest/ when set.
 *
 * Over the rate a WebSocket is made to wait: its request is handled once a token is
 * there, and while it waits the socket is not read (WsSession), so TCP slows the
 * client down. Nothing is refused or closed, since a closed socket comes back in 0.5 s
 * (official-client.md §7). A POST is answered 429 at once instead of held open; the
 * official client fires its publishes and forgets them, so it does not retry.
 */
export class ClientRate {
  private readonly perPublicId: KeyedRate;
  private readonly perAddress: KeyedRate | undefined;
  /** The last waiting request of each public id that has any: the next one queues behind it. */
  private readonly waiting = new Map<string, Promise<void>>();

  constructor(
    limits: Config['limits'],
    private readonly telemetry: Pick<Telemetry, 'clientRequestLimited'>,
  ) {
    this.perPublicId = new KeyedRate(limits.clientRequestsPerSec, limits.clientRequestBurst);
    const perIp = limits.restRequestsPerIpPerSec;
    this.perAddress = perIp > 0 ? new KeyedRate(perIp, perIp) : undefined;
  }

  /**
   * Resolves once `key` (a public id, or with `by: 'ip'` a client address: a protocol 5
   * connection without a public id) may make a request, or once `gone()` (the socket
   * closed). Waiting requests of one key take their turns in the order they asked, so a
   * client's messages keep their order.
   */
  waitTurn(key: string, gone: () => boolean, by: 'public-id' | 'ip' = 'public-id'): Promise<void> {
    const before = this.waiting.get(key);
    if (before === undefined && this.perPublicId.take(key) === 0) return Promise.resolve();
    this.telemetry.clientRequestLimited('delayed', by);
    const turn = (before ?? Promise.resolve()).then(() => this.tokenFor(key, gone));
    this.waiting.set(key, turn);
    void turn.finally(() => {
      if (this.waiting.get(key) === turn) this.waiting.delete(key);
    });
    return turn;
  }

  private async tokenFor(publicId: string, gone: () => boolean): Promise<void> {
    for (let wait = this.perPublicId.take(publicId); wait > 0 && !gone(); wait = this.perPublicId.take(publicId)) await sleep(wait);
  }

  /** For a POST: 0 when `publicId` may make it now, else the milliseconds to come back after. */
  restRequest(publicId: string): number {
    const wait = this.perPublicId.take(publicId);
    if (wait > 0) this.telemetry.clientRequestLimited('refused', 'public-id');
    return wait;
  }

  /** For a POST, before anything else is looked at: as restRequest, by client address. */
  restAddress(address: string | undefined): number {
    if (this.perAddress === undefined || address === undefined) return 0;
    const wait = this.perAddress.take(address);
    if (wait > 0) this.telemetry.clientRequestLimited('refused', 'ip');
    return wait;
  }
}
