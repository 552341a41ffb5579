import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, it } from 'node:test';
import dockerignore from '@balena/dockerignore';
import { builtPath, compiledSources } from './lib/build-layout.ts';
import { jetpullServices, loadCompose } from './lib/compose.ts';
import { execForm, instructions, readDockerfile, stageCopies, stageEnv, type BuildStage } from './lib/dockerfile.ts';
import { healthcheckRequest, nodeScript } from './lib/healthcheck.ts';
import { DEFAULTS, jetpullConfig } from './lib/jetpull-config.ts';
import { readRepoFile, repoPath } from './lib/paths.ts';

/** deploy/Dockerfile, its build context (.dockerignore) and the build script it runs. */

const stages = readDockerfile('deploy/Dockerfile');
const final = stages.at(-1)!;
const last = (keyword: string) => instructions(final, keyword).at(-1);
const pkg = JSON.parse(readRepoFile('package.json')) as { main?: string; scripts: Record<string, string> };

/** A COPY source covers a path when it is the path, a folder above it, or the whole context. */
const copies = (stage: BuildStage, path: string): boolean =>
  stageCopies(stage).some((c) => c.from === undefined && c.sources.some((s) => {
    const src = posix.normalize(s).replace(/\/$/, '');
    return src === '.' || src === path || path.startsWith(`${src}/`);
  }));

describe('deploy: deploy/Dockerfile', () => {
  it('runs the final stage on node 20 as a non-root user in production mode, exposing the listener ports', () => {
    assert.ok(stages.length >= 2, 'multi-stage build');
    assert.match(final.from, /^node:20[-.]/);
    const user = last('USER')?.getArgumentsContent();
    assert.ok(user, 'the final stage sets USER');
    assert.ok(!/^(root|0)(:(root|0))?$/.test(user), `USER ${user} is root`);
    assert.equal(stageEnv(final).get('NODE_ENV'), 'production', 'ENV NODE_ENV=production');
    const exposed = new Set(instructions(final, 'EXPOSE').flatMap((i) => i.getArguments().map((a) => Number(a.getValue().split('/')[0]))));
    const listening = new Set([DEFAULTS.servers[0]!.port]);
    for (const file of ['docker-compose.yml', 'deploy/compose.single.yml']) {
      for (const [name, svc] of jetpullServices(loadCompose(file))) for (const s of jetpullConfig(name, svc).servers) listening.add(s.port);
    }
    for (const port of listening) assert.ok(exposed.has(port), `EXPOSE ${port} (a listener port of the compose files or the default), got ${[...exposed].join(' ')}`);
  });

  it('starts the entry file that tsconfig.build.json emits', () => {
    const cmd = last('CMD');
    assert.ok(cmd, 'the final stage has a CMD');
    const argv = execForm(cmd);
    assert.equal(argv[0], 'node');
    assert.ok(argv.includes('--enable-source-maps'), 'stack traces point into the TypeScript sources');
    const entry = argv.at(-1)!;
    assert.equal(entry, builtPath('src/main.ts'), 'CMD starts the file tsc emits for src/main.ts');
    assert.equal(pkg.main, entry, 'package.json "main"');
    assert.ok(pkg.scripts['start:dist']?.endsWith(` ${entry}`), 'package.json "start:dist"');
    const copied = stageCopies(final);
    const distFrom = copied.find((c) => c.from !== undefined && c.sources.some((s) => s.replace(/\/$/, '').endsWith('/dist')))?.from;
    assert.ok(distFrom, 'dist/ is copied from a build stage');
    assert.ok(stages.some((s) => s.name === distFrom && copies(s, 'src/main.ts')), `stage ${distFrom} builds from the sources`);
    assert.ok(copies(final, 'package.json'), 'package.json ("type": "module") is copied');
  });

  it('has a HEALTHCHECK that needs no curl and asks /readyz on the admin port the image sets', () => {
    const hc = last('HEALTHCHECK');
    assert.ok(hc, 'the final stage has a HEALTHCHECK');
    const script = nodeScript(execForm(hc), 'HEALTHCHECK');
    const imageEnv = stageEnv(final).get('PUSH_ADMIN__PORT') ?? '';
    assert.equal(imageEnv, String(DEFAULTS.admin.port), 'the image fixes the admin port at the default');
    assert.equal(healthcheckRequest(script, { PUSH_ADMIN__PORT: imageEnv }).port, Number(imageEnv));
    assert.equal(healthcheckRequest(script, { PUSH_ADMIN__PORT: '19180', PUSH_ADMIN__HOSTNAME: '0.0.0.0' }).port, 19180, 'the healthcheck follows PUSH_ADMIN__PORT');
    assert.equal(healthcheckRequest(script, { PUSH_ADMIN__HOSTNAME: '0.0.0.0' }).host, '127.0.0.1', 'a wildcard bind address is asked on the loopback');
    assert.equal(healthcheckRequest(script, {}).path, '/readyz');
  });

  it('compiles every file tsconfig.build.json includes, and the build context does not exclude them', () => {
    const build = stages.find((s) => instructions(s, 'RUN').some((i) => /\bnpm run build\b/.test(i.getArgumentsContent() ?? '')));
    assert.ok(build, 'a stage runs npm run build');
    // CommonJS with a default export in its typings: under Node ESM the factory is .default.
    const context = dockerignore.default().add(readRepoFile('.dockerignore'));
    for (const path of [...compiledSources(), 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      assert.ok(copies(build, path), `the build stage copies ${path}`);
      assert.ok(!context.ignores(path), `.dockerignore excludes ${path}`);
    }
    for (const path of ['node_modules', 'dist', '.git', 'data']) assert.ok(context.ignores(path), `.dockerignore keeps ${path} out of the build context`);
  });
});

describe('deploy: build script', () => {
  it('copies push.proto next to the compiled protobuf module', () => {
    const build = pkg.scripts.build ?? '';
    assert.match(build, /\btsc -p tsconfig\.build\.json\b/);
    assert.ok(existsSync(repoPath('src/wire/push.proto')));
    const target = posix.join(posix.dirname(builtPath('src/wire/protobuf.ts')), 'push.proto');
    assert.ok(build.includes('src/wire/push.proto') && build.includes(target), `the build script copies push.proto to ${target}: ${build}`);
  });

  it('builds the demo page next to the compiled module that serves it, from files the image build has', () => {
    const build = pkg.scripts.build ?? '';
    assert.match(build, /tsc -p tsconfig\.build\.json .*&& node scripts\/build-demo\.mjs/, 'after tsc, whose output it imports');
    const script = readRepoFile('scripts/build-demo.mjs');
    const served = posix.dirname(builtPath('src/demo/assets.ts'));
    assert.ok(script.includes(`${served}/page/`) && script.includes(`${served}/assets.js`), `build-demo.mjs writes into ${served}/page/`);
    const stage = stages.find((s) => instructions(s, 'RUN').some((i) => /\bnpm run build\b/.test(i.getArgumentsContent() ?? '')))!;
    const context = dockerignore.default().add(readRepoFile('.dockerignore'));
    for (const path of ['src/demo/page/index.html', 'src/demo/page/client.ts', 'scripts/build-demo.mjs']) {
      assert.ok(existsSync(repoPath(path)), path);
      assert.ok(copies(stage, path), `the build stage copies ${path}`);
      assert.ok(!context.ignores(path), `.dockerignore excludes ${path}`);
    }
  });
});
