#!/usr/bin/env node
import { processIo } from './cli/io.ts';
import { runCli } from './cli/run.ts';

/**
 * Process entry, the `jetpull` command: `jetpull serve` (or no command) runs the
 * server, the other commands are tools around it (src/cli/run.ts lists them).
 */
const code = await runCli(process.argv.slice(2), processIo());
if (code !== undefined) process.exitCode = code;
