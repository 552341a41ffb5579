import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';
import proxyaddr from 'proxy-addr';

/**
 * The address a request comes from, for limits per client address. Behind a reverse
 * proxy every connection's TCP peer is the proxy, so the peers listed in
 * security.trustedProxies are asked: their `X-Forwarded-For` is read from the right,
 * past every trusted proxy, to the first address that is not one (what a client
 * writes into the header itself stays on the left and is never believed), or, without
 * that header, their `X-Real-IP`. Anyone else's headers are ignored.
 */
export class ClientAddress {
  private readonly trust: ((addr: string, i: number) => boolean) | undefined;

  constructor(trustedProxies: readonly string[]) {
    this.trust = trustedProxies.length === 0 ? undefined : proxyaddr.compile([...trustedProxies]);
  }

  of(req: IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? '';
    const trust = this.trust;
    if (trust === undefined || !trust(peer, 0)) return peer;
    if (req.headers['x-forwarded-for'] !== undefined) return proxyaddr(req, trust);
    const real = req.headers['x-real-ip'];
    return typeof real === 'string' && ipaddr.isValid(real.trim()) ? real.trim() : peer;
  }
}

/** Throws when an entry of security.trustedProxies is neither an address, a CIDR range nor a named range. */
export function checkTrustedProxies(list: readonly string[]): void {
  proxyaddr.compile([...list]);
}

/**
 * The key limits per address count under: an IPv4 address as it is (IPv4-mapped IPv6
 * too), an IPv6 address by its /64 network, since one subscriber line or host usually
 * gets a whole /64 and could otherwise take a new address for every connection.
 */
export function addressKey(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  const ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  const v6 = ip as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  return `${v6.parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}
