/** Path and query of a request URL; repeated parameters are kept as arrays. */
export interface ParsedUrl {
  readonly pathname: string;
  readonly query: URLSearchParams;
}

export function parseUrl(url: string | undefined): ParsedUrl {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const pathname = q === -1 ? raw : raw.slice(0, q);
  return { pathname, query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)) };
}

/**
 * A query parameter given exactly once; `null` when absent, an array when repeated
 * (Push server 2.0 crashed on a repeated CHANNEL_ID; callers reject it instead).
 */
export function single(query: URLSearchParams, name: string): string | string[] | null {
  const all = query.getAll(name);
  if (all.length === 0) return null;
  return all.length === 1 ? all[0]! : all;
}

