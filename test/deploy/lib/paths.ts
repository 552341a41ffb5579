import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root; every path in the deploy tests is relative to it, with forward slashes. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const repoPath = (rel: string): string => join(ROOT, rel);

export const readRepoFile = (rel: string): string => readFileSync(repoPath(rel), 'utf8');
