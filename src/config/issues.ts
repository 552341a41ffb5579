import { z } from 'zod';

/**
 * A configuration problem in a form tools can use: where (a path in the runtime
 * config), what, and what to do about it. `jetpull check` maps the path back to the
 * place in the file; start-up prints the one-line form of config/load.ts.
 */
export interface ConfigIssue {
  readonly path: readonly string[];
  readonly message: string;
  readonly fix: string;
}

/** A schema with its optional/default wrappers taken off. */
export function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      s = (s as unknown as { def: { innerType: z.ZodType } }).def.innerType;
    } else {
      return s;
    }
  }
}

/** One issue per problem; an unknown-keys issue becomes one issue per key, at the key. */
export function issuesFromZod(error: z.ZodError, root: z.ZodType): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(root, path);
      for (const key of issue.keys) {
        const near = closest(key, known);
        out.push({
          path: [...path, key],
          message: 'unknown setting',
          fix: `remove it${near ? `, or did you mean "${near}"?` : ''}${known.length > 0 ? ` (settings here: ${known.join(', ')})` : ''}`,
        });
      }
      continue;
    }
    out.push({ path, message: issue.message, fix: fixFor(issue) });
  }
  return out;
}

function fixFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // Parsed with reportInput, so a missing value shows as an undefined input.
      if ('input' in issue && issue.input === undefined) return `it is required: add a ${issue.expected}`;
      return issue.expected === 'number' ? 'use a number (no quotes needed, no units)' : `use a ${issue.expected}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty: set a value or remove the setting';
      if (issue.origin === 'array') return `give at least ${String(issue.minimum)} entries`;
      return `use a value ${issue.inclusive === false ? 'greater than' : 'of at least'} ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'string') return `shorten it to ${String(issue.maximum)} characters or fewer`;
      return `use a value ${issue.inclusive === false ? 'below' : 'of at most'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `use one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      // The only unions are the numbers of a Push server 2.0 file (a number or a string of digits).
      return 'write a whole number, without units (e.g. 86400)';
    case 'invalid_format':
      return 'prefix' in issue && typeof issue.prefix === 'string' ? `start it with "${issue.prefix}"` : `use the ${issue.format} format`;
    default:
      return 'see deploy/jetpull.env.example for what the setting takes';
  }
}

/** The keys an object schema at `path` accepts ([] when the path leads elsewhere). */
function knownKeys(root: z.ZodType, path: readonly string[]): string[] {
  let node = unwrap(root);
  for (const step of path) {
    if (node instanceof z.ZodArray) node = unwrap((node as unknown as { def: { element: z.ZodType } }).def.element);
    else if (node instanceof z.ZodObject) node = unwrap((node.shape as Record<string, z.ZodType>)[step] ?? z.never());
    else return [];
  }
  if (node instanceof z.ZodArray) node = unwrap((node as unknown as { def: { element: z.ZodType } }).def.element);
  return node instanceof z.ZodObject ? Object.keys(node.shape) : [];
}

/** The known key nearest to a misspelt one, if it is near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
