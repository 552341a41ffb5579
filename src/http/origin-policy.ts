/**
 * Which browser origins may open subscriptions and send client requests
 * (`security.allowedOrigins`). Empty: every origin, as Push server 2.0.
 *
 * A request without an `Origin` header is allowed: browsers send one on every
 * WebSocket upgrade and on every cross-origin request, so its absence means a
 * same-origin page or a non-browser client (desktop, mobile), which an Origin
 * check cannot tell apart from an attacker anyway. The check is against other
 * sites' pages using a visitor's browser.
 */
export class OriginPolicy {
  private readonly exact = new Set<string>();
  /** `https://*.example.com` entries as [scheme + '//', '.example.com' + optional port]. */
  private readonly wildcards: Array<[string, string]> = [];

  constructor(allowed: readonly string[]) {
    for (const entry of allowed) {
      const o = entry.toLowerCase();
      const star = o.indexOf('//*.');
      if (star === -1) this.exact.add(o);
      else this.wildcards.push([o.slice(0, star + 2), o.slice(star + 3)]);
    }
  }

  get restricted(): boolean {
    return this.exact.size > 0 || this.wildcards.length > 0;
  }

  allows(origin: string | string[] | undefined): boolean {
    if (!this.restricted || origin === undefined) return true;
    if (Array.isArray(origin)) return false;
    const o = origin.toLowerCase();
    if (this.exact.has(o)) return true;
    for (const [scheme, suffix] of this.wildcards) {
      if (o.startsWith(scheme) && o.endsWith(suffix) && o.length > scheme.length + suffix.length && !o.slice(scheme.length, o.length - suffix.length).includes('/')) return true;
    }
    return false;
  }
}
