import assert from 'node:assert/strict';
import ts from 'typescript';
import { readRepoFile } from './paths.ts';

/**
 * How long jetpull waits after the drain window before exiting anyway: the
 * SHUTDOWN_GRACE_MS constant of src/cli/server.ts (what jetpull serve runs), read with
 * the TypeScript parser so that the deploy checks load none of the server.
 */
export function shutdownGraceMs(): number {
  const source = ts.createSourceFile('server.ts', readRepoFile('src/cli/server.ts'), ts.ScriptTarget.Latest);
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const decl of statement.declarationList.declarations) {
      if (ts.isIdentifier(decl.name) && decl.name.text === 'SHUTDOWN_GRACE_MS' && decl.initializer && ts.isNumericLiteral(decl.initializer)) {
        return Number(decl.initializer.text);
      }
    }
  }
  assert.fail('src/cli/server.ts no longer defines SHUTDOWN_GRACE_MS as a number');
}
