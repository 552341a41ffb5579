/**
 * Compose's variable interpolation in string values: $$, $NAME, ${NAME}, and the
 * modifiers :- - :? ? :+ + (https://docs.docker.com/reference/compose-file/interpolation/).
 * Nested references inside a default are not supported: the deploy files do not use them.
 */

/** A variable of the host environment; `required` is true for ${NAME:?…} and ${NAME?…}. */
export type HostLookup = (name: string, required: boolean) => string | undefined;

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

export function interpolate(value: string, lookup: HostLookup): string {
  return value.replace(REFERENCE, (whole, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
    if (whole === '$$') return '$';
    const name = (braced ?? bare)!;
    const set = lookup(name, op === ':?' || op === '?');
    // With a colon the modifier treats an empty value like an unset one.
    const present = op?.startsWith(':') ? set !== undefined && set !== '' : set !== undefined;
    switch (op?.replace(':', '')) {
      case '-':
        return present ? set! : arg!;
      case '?':
        if (!present) throw new Error(`required variable ${name} is missing: ${arg}`);
        return set!;
      case '+':
        return present ? arg! : '';
      default:
        return set ?? '';
    }
  });
}

/** The host variables a string refers to. */
export function referencedVariables(value: string): string[] {
  return [...value.matchAll(REFERENCE)].flatMap((m) => (m[1] ?? m[4] ? [(m[1] ?? m[4])!] : []));
}

/** The value is one reference to a host variable and nothing else, e.g. ${KEY:?set KEY}. */
export function isSingleReference(value: string): boolean {
  const refs = [...value.matchAll(REFERENCE)];
  return refs.length === 1 && refs[0]![0] === value && value !== '$$';
}
