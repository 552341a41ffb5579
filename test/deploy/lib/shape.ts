import assert from 'node:assert/strict';

/** A parsed YAML or JSON mapping. */
export type Mapping = { [key: string]: unknown };

export function mapping(value: unknown, what: string): Mapping {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what} must be a mapping`);
  return value as Mapping;
}

export function sequence(value: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(value), `${what} must be a sequence`);
  return value;
}
