import assert from 'node:assert/strict';
import { parse } from 'nginx-conf';
import { readRepoFile } from './paths.ts';

/** A node of nginx-conf's tree (the package does not export the class from its entry point). */
type ParsedNode = NonNullable<Parameters<Parameters<typeof parse>[1]>[1]>;

export interface NginxDirective {
  name: string;
  args: string[];
  /** Present for block directives (http, server, location, upstream, ...). */
  block?: NginxDirective[];
}

/** An nginx config as a tree of directives, read by the nginx-conf parser. */
export function readNginxConf(rel: string): NginxDirective[] {
  let tree: ParsedNode | undefined;
  parse(readRepoFile(rel), (err, parsed) => {
    assert.equal(err, null, `${rel}: ${err?.message} (line ${(err as { line?: number } | null)?.line})`);
    tree = parsed;
  });
  assert.ok(tree, `${rel}: the parser returned nothing`);
  return toDirectives(tree.children ?? []);
}

function toDirectives(nodes: readonly ParsedNode[]): NginxDirective[] {
  return nodes.map((n) => ({
    name: words(n.name)[0] ?? n.name,
    args: words(n.value),
    ...(n.isBlock ? { block: toDirectives(n.children ?? []) } : {}),
  }));
}

/**
 * The parser keeps a directive's arguments as one string; nginx splits them at
 * blanks, with '…' and "…" (backslash escapes inside) as single words.
 */
function words(value: string): string[] {
  return [...value.matchAll(/"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([^\s"']+)/g)].map((m) =>
    m[3] ?? (m[1] ?? m[2]!).replace(/\\(.)/g, '$1'),
  );
}

export const directives = (block: readonly NginxDirective[] | undefined, name: string): NginxDirective[] => (block ?? []).filter((d) => d.name === name);

/** The last one wins in nginx for single-valued directives. */
export const directive = (block: readonly NginxDirective[] | undefined, name: string): NginxDirective | undefined => directives(block, name).at(-1);

/** nginx time values (43800, 43800s, 12h, 1m30s) in seconds. */
export function nginxSeconds(value: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h|d|w|M|y)?/g)];
  assert.ok(value !== '' && parts.map((m) => m[0]).join('') === value, `cannot read nginx time "${value}"`);
  return parts.reduce((total, m) => total + Number(m[1]) * units[m[2] ?? 's']!, 0);
}

/** nginx sizes (2m, 512k, 1048576) in bytes. */
export function nginxBytes(value: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(value);
  assert.ok(m, `cannot read nginx size "${value}"`);
  return Number(m[1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf(m[2]!.toLowerCase());
}
