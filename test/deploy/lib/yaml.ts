import assert from 'node:assert/strict';
import { parseDocument } from 'yaml';
import { readRepoFile } from './paths.ts';

/**
 * A YAML file of the repository as plain data. Duplicate keys, syntax errors and
 * warnings fail the test: Compose and Prometheus would reject or misread the file.
 * Merge keys (<<) are on, as in Compose.
 */
export function readYaml(rel: string): unknown {
  const doc = parseDocument(readRepoFile(rel), { uniqueKeys: true, merge: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
  assert.deepEqual(problems, [], `${rel} is not clean YAML`);
  return doc.toJS();
}
