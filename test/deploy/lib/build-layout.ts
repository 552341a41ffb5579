import assert from 'node:assert/strict';
import { relative } from 'node:path';
import ts from 'typescript';
import { repoPath, ROOT } from './paths.ts';

const toRepo = (abs: string): string => relative(ROOT, abs).split('\\').join('/');

/** tsconfig.build.json as tsc reads it (extends, include, compiler options). */
function buildConfig(): ts.ParsedCommandLine {
  const parsed = ts.getParsedCommandLineOfConfigFile(repoPath('tsconfig.build.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  });
  assert.ok(parsed, 'tsconfig.build.json cannot be read');
  assert.deepEqual(parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], 'tsconfig.build.json has errors');
  return parsed;
}

/** Repository paths of the files `npm run build` compiles. */
export const compiledSources = (): string[] => buildConfig().fileNames.map(toRepo);

/** The JavaScript file tsc emits for a source file. */
export function builtPath(source: string): string {
  const outputs = ts.getOutputFileNames(buildConfig(), repoPath(source), false).map(toRepo);
  const js = outputs.find((f) => f.endsWith('.js'));
  assert.ok(js, `tsc emits no JavaScript for ${source} (outputs: ${outputs.join(', ')})`);
  return js;
}
