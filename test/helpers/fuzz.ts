import { readFileSync } from 'node:fs';
import fc from 'fast-check';

/**
 * How the property suites in test/fuzz run:
 *
 * - Each property first replays its entries of `test/fuzz/corpus/<suite>.json` (every
 *   input that ever failed, as fast-check `examples`), then `runs` random inputs.
 * - The seed is random; a failure prints it with the path of the shrunk counterexample.
 *   `JETPULL_FUZZ_SEED=<seed>` (and `JETPULL_FUZZ_PATH=<path>`) replays exactly that run;
 *   pick the one property with `--test-name-pattern`, as a path only fits its own property.
 * - `JETPULL_FUZZ_RUNS=<n>` multiplies every property's runs by n, for a long local run.
 *
 * A corpus file is `{ "<property>": [{ "found": "<what went wrong>", "input": [<args>] }] }`;
 * `input` is the property's arguments as JSON, turned back into them by `decode`.
 */

export interface CorpusEntry {
  readonly found: string;
  readonly input: unknown;
}

function envInteger(name: string, min: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return n;
}

/** A property's run count, scaled by JETPULL_FUZZ_RUNS. */
export function scaledRuns(runs: number): number {
  return runs * (envInteger('JETPULL_FUZZ_RUNS', 1) ?? 1);
}

function corpus(suite: string): Record<string, CorpusEntry[]> {
  return JSON.parse(readFileSync(new URL(`../fuzz/corpus/${suite}.json`, import.meta.url), 'utf8')) as Record<string, CorpusEntry[]>;
}

export function corpusEntries(suite: string, property: string): CorpusEntry[] {
  return corpus(suite)[property] ?? [];
}

/** The property names a suite's corpus has entries for (a suite checks they are all its own). */
export function corpusProperties(suite: string): string[] {
  return Object.keys(corpus(suite));
}

export interface FuzzOptions<Ts> {
  /** Random inputs per run (before JETPULL_FUZZ_RUNS). */
  readonly runs: number;
  /** Corpus input (JSON) back into the property's arguments; identity by default. */
  readonly decode?: (input: unknown) => Ts;
}

/** Runs `prop` on the corpus of `suite`/`property` and then on random inputs; rejects with fast-check's report. */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  suite: string,
  property: string,
  prop: fc.IRawProperty<Ts, boolean>,
  opts: FuzzOptions<Ts>,
): Promise<void> {
  const decode = opts.decode ?? ((input: unknown) => input as Ts);
  const examples = corpusEntries(suite, property).map((e) => decode(e.input));
  const seed = envInteger('JETPULL_FUZZ_SEED', -(2 ** 31));
  const path = process.env.JETPULL_FUZZ_PATH;
  await fc.assert(prop, {
    numRuns: scaledRuns(opts.runs),
    examples,
    ...(seed === undefined ? {} : { seed }),
    ...(path ? { path } : {}),
  });
}

export const hexBytes = (hex: unknown): Uint8Array => new Uint8Array(Buffer.from(String(hex), 'hex'));
