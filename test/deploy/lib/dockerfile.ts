import assert from 'node:assert/strict';
import { Copy, DockerfileParser, Env, type Instruction } from 'dockerfile-ast';
import { readRepoFile } from './paths.ts';

export interface BuildStage {
  /** The base image, e.g. node:20-bookworm-slim. */
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** The build stages of a Dockerfile, read by dockerfile-ast (the VS Code Docker language server's parser). */
export function readDockerfile(rel: string): BuildStage[] {
  const dockerfile = DockerfileParser.parse(readRepoFile(rel));
  return dockerfile.getFROMs().map((from) => {
    const image = dockerfile.getContainingImage(from.getRange().start);
    assert.ok(image, `${rel}: no build stage at FROM ${from.getArgumentsContent()}`);
    const name = from.getBuildStage();
    return { from: from.getImage() ?? '', ...(name ? { name } : {}), instructions: image.getInstructions() };
  });
}

export const instructions = (stage: BuildStage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.getKeyword() === keyword);

/**
 * The argv of an exec-form CMD, ENTRYPOINT or HEALTHCHECK CMD. Docker reads the exec
 * form as a JSON array of strings and runs anything else through a shell.
 */
export function execForm(instruction: Instruction): string[] {
  const what = instruction.getKeyword();
  let text = instruction.getArgumentsContent() ?? '';
  if (what === 'HEALTHCHECK') {
    // Options come before the CMD subcommand: HEALTHCHECK --interval=… CMD [...]
    const cmd = /(?:^|\s)CMD\s+(.*)$/s.exec(text);
    assert.ok(cmd, `HEALTHCHECK ${text}: no CMD`);
    text = cmd[1]!;
  }
  let argv: unknown;
  try {
    argv = JSON.parse(text);
  } catch {
    assert.fail(`${what} must use the exec (JSON array) form, got: ${text}`);
  }
  assert.ok(Array.isArray(argv) && argv.every((a) => typeof a === 'string'), `${what}: not an array of strings`);
  return argv;
}

/** ENV settings of a stage, the last one winning. */
export function stageEnv(stage: BuildStage): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of stage.instructions) if (i instanceof Env) for (const p of i.getProperties()) env.set(p.getName(), p.getValue() ?? '');
  return env;
}

export interface CopyInstruction {
  /** The build stage it copies from (--from), if any. */
  from?: string;
  sources: string[];
  destination: string;
}

export function stageCopies(stage: BuildStage): CopyInstruction[] {
  return stage.instructions.flatMap((i) => {
    if (!(i instanceof Copy)) return [];
    const args = i.getArguments().map((a) => a.getValue());
    const from = i.getFromFlag()?.getValue();
    return [{ ...(from ? { from } : {}), sources: args.slice(0, -1), destination: args.at(-1) ?? '' }];
  });
}
