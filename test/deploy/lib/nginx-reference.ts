import { getDirectives } from '@nginx/reference-lib';
import type { NginxDirective } from './nginx-conf.ts';

/** Where each directive may appear, from the directive reference nginx publishes with its docs. */
const contextsByName = new Map<string, Set<string>>();
for (const d of getDirectives()) {
  const contexts = contextsByName.get(d.name) ?? new Set<string>();
  for (const c of d.contexts) contexts.add(c);
  contextsByName.set(d.name, contexts);
}
/** Blocks that hold directives; the others (map, types, geo, ...) hold data. */
const directiveContexts = new Set([...contextsByName.values()].flatMap((s) => [...s]));

/**
 * Directives nginx does not know, or uses in a block that does not allow them: what
 * `nginx -t` would report first, checked without an nginx binary.
 */
export function referenceProblems(tree: readonly NginxDirective[]): string[] {
  const problems: string[] = [];
  const walk = (block: readonly NginxDirective[], context: string, path: string): void => {
    for (const d of block) {
      const allowed = contextsByName.get(d.name);
      const where = `${path}${d.name}`;
      if (!allowed) problems.push(`${where}: not an nginx directive`);
      else if (!allowed.has(context)) problems.push(`${where}: not allowed in ${context} (only in ${[...allowed].join(', ')})`);
      if (!d.block) continue;
      const inner = d.name === 'if' && context === 'location' ? 'if in location' : d.name;
      if (directiveContexts.has(inner)) walk(d.block, inner, `${[where, ...d.args].join(' ')} > `);
    }
  };
  walk(tree, 'main', '');
  return problems;
}
