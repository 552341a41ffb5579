import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { resolveNatsBinary } from '../../src/nats/local-server.ts';
import { nchanUnavailable } from '../../bench/lib/nchan.ts';

/**
 * The benchmark suite (bench/run.ts) with tiny numbers: every scenario starts its own
 * nats-server and jetpull, produces its JSON line, and loses or duplicates nothing.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface BenchReport {
  scenario: string;
  machine: { cores: number; natsServer: string };
  params: Record<string, unknown>;
  results: Record<string, any>;
  cpu: Record<string, number>;
  rss: Record<string, number>;
  loadgenSaturated: boolean;
  problems: string[];
}

function runBench(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; report: BenchReport; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args, '--timeout-s', '45'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{"scenario":'));
      if (line === undefined) {
        reject(new Error(`no JSON line from bench ${args.join(' ')} (exit ${code})\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`));
        return;
      }
      resolve({ code, report: JSON.parse(line) as BenchReport, stdout, stderr });
    });
  });
}

async function bench(args: string[]): Promise<BenchReport> {
  const { code, report, stdout, stderr } = await runBench(args);
  assert.equal(code, 0, `exit code\n${stdout}\n${stderr.slice(-4000)}`);
  assert.equal(report.scenario, args[0]);
  assert.deepEqual(report.problems, [], `problems reported\n${stdout}`);
  assert.equal(typeof report.cpu.loadgenPct, 'number');
  assert.equal(typeof report.loadgenSaturated, 'boolean');
  // The human table comes before the JSON line, which is the last line.
  assert.ok(stdout.trimEnd().endsWith('}'));
  return report;
}

function assertClean(part: Record<string, any>, what: string): void {
  assert.equal(part.lost, 0, `${what}: lost`);
  assert.equal(part.duplicated, 0, `${what}: duplicated`);
}

/** The nginx + nchan part: measured when installed, otherwise skipped with the reason. */
function assertPeer(results: Record<string, any>, deliveries: number, ratioKey: string): void {
  const unavailable = nchanUnavailable();
  if (unavailable !== undefined) {
    assert.equal(results.nchan.skipped, unavailable);
    return;
  }
  assertClean(results.nchan, 'nchan');
  assert.equal(results.nchan.deliveries, deliveries);
  assert.equal(typeof results.nchan[ratioKey], 'number');
  assert.equal(typeof results.nchan.cpu.nchanPct, 'number');
}

describe('bench smoke (tiny numbers, same code paths)', () => {
  it('fanout, with the ceiling in the same run', async () => {
    const r = await bench(['fanout', '--clients', '20', '--messages', '20']);
    assertClean(r.results, 'fanout');
    assert.equal(r.results.deliveries, 400);
    assert.equal(r.results.ceiling.deliveries, 400);
    assertClean(r.results.ceiling, 'ceiling');
    assert.equal(typeof r.results.ratioToCeiling, 'number');
    assertPeer(r.results, 400, 'deliveriesRatioJetpullToNchan');
    assert.equal(typeof r.cpu.jetpullPct, 'number');
    assert.equal(typeof r.rss.natsMiB, 'number');
  });

  it('unicast', async () => {
    const r = await bench(['unicast', '--clients', '20', '--rate', '50', '--duration-s', '1']);
    assertClean(r.results, 'unicast');
    assert.equal(r.results.misrouted, 0);
    assert.equal(r.results.deliveries, 50);
    assertPeer(r.results, 50, 'p99RatioJetpullToNchan');
  });

  it('binary (fanout and unicast in binaryMode)', async () => {
    const r = await bench(['binary', '--clients', '20', '--messages', '20', '--rate', '50', '--duration-s', '1']);
    assertClean(r.results.fanout, 'binary fanout');
    assertClean(r.results.unicast, 'binary unicast');
    assert.equal(r.results.fanout.deliveries, 400);
    assert.equal(r.results.unicast.deliveries, 50);
  });

  it('longpoll', async () => {
    const r = await bench(['longpoll', '--clients', '20', '--rate', '50', '--duration-s', '1']);
    assertClean(r.results, 'longpoll');
    assert.equal(r.results.deliveries, 50);
  });

  it('replay', async () => {
    const r = await bench(['replay', '--clients', '20', '--messages-per-client', '3', '--live-clients', '5', '--baseline-s', '1']);
    assertClean(r.results, 'replay');
    assert.equal(r.results.staleReplayed, 0);
    assert.equal(r.results.clientsCaughtUp, 20);
    assert.equal(r.results.live.lost, 0);
  });

  it('idle', async () => {
    const r = await bench(['idle', '--clients', '20', '--settle-s', '1']);
    assert.equal(r.results.openAfterSettle, 20);
    assert.equal(r.results.broadcastDelivered, 20);
    assert.equal(typeof r.results.jetpullKiBPerConnection, 'number');
  });

  it('publish (text, protobuf, nats, nats-batch)', async () => {
    const r = await bench(['publish', '--duration-s', '1', '--text-concurrency', '8', '--nats-concurrency', '16']);
    for (const path of ['text', 'protobuf', 'nats', 'nats-batch']) {
      assert.ok(r.results[path].ackedMessages > 0, `${path} acked nothing`);
      assert.equal(r.results[path].errors, 0, `${path} errors`);
    }
  });

  it('atomic-batch (both multi-receiver write paths on R1 and R3), or a clear refusal before nats-server 2.12', async () => {
    const version = execFileSync(resolveNatsBinary(process.env.JETPULL_TEST_NATS_BINARY ?? 'nats-server'), ['--version'], { encoding: 'utf8' });
    const [major = 0, minor = 0] = (/v(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number);
    const args = ['atomic-batch', '--publishes', '5', '--copies', '3', '--rounds', '1'];
    if (major > 2 || (major === 2 && minor >= 12)) {
      const r = await bench(args);
      assert.deepEqual(
        r.results.runs.map((x: { replicas: number; path: string; failed: number }) => `R${x.replicas} ${x.path} ${x.failed}`),
        ['R1 per-copy 0', 'R1 batch 0', 'R3 per-copy 0', 'R3 batch 0'],
      );
      return;
    }
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      child.once('error', reject);
      child.once('exit', (c) => resolve({ code: c, stderr: err }));
    });
    assert.equal(code, 1);
    assert.match(stderr, /needs nats-server 2\.12/);
  });

  it('cluster-writes (messages, shard streams, presence puts, bulk records on R1 and R3)', async () => {
    const r = await bench(['cluster-writes', '--duration-s', '1', '--in-flight', '8', '--presence-in-flight', '8', '--presence-keys', '100', '--snapshot-kib', '8']);
    assert.deepEqual(
      r.results.runs.map((x: { replicas: number; path: string; streams: number }) => `R${x.replicas} ${x.path} ${x.streams}`),
      ['R1 stream 1', 'R1 stream x3 shards 3', 'R1 presence 1', 'R1 snapshot 8 KiB 1', 'R3 stream 1', 'R3 stream x3 shards 3', 'R3 presence 1', 'R3 snapshot 8 KiB 1'],
    );
    for (const run of r.results.runs) {
      assert.ok(run.acked > 0 && run.failed === 0, `${run.path}: ${run.acked} acked, ${run.failed} failed`);
      assert.equal(Object.keys(run.nodeCpuUsPerWrite).length, run.replicas, `${run.path}: CPU of every node`);
    }
  });

  it('cluster-writes --paths subjects (memory per stored message, channel and presence key, read from the GC trace)', async () => {
    const r = await bench(['cluster-writes', '--paths', 'subjects', '--subject-count', '200', '--subjects-late-s', '0', '--replicas', '1', '--in-flight', '8', '--presence-in-flight', '8']);
    const [state] = r.results.subjectState;
    assert.equal(state.writes, 200);
    for (const what of ['perStoredMessage', 'perWriteInDuplicateWindow', 'perSubject', 'perPresenceKey']) assert.equal(typeof state.liveHeapBytes[what].n1, 'number', what);
    // The live heap comes from the server's GC trace: a reading was there.
    assert.ok(state.memoryMiB.emptyStream.live.n1 >= 0, 'live heap read');
  });

  it('interest (subscriptions counted on every node of a cluster, wildcards, removal, wildcard fan-out)', async () => {
    const r = await bench(['interest', '--subscriptions', '2000', '--step', '1000', '--settle-s', '0', '--fanout-messages', '200', '--fanout-gateways', '3']);
    assert.deepEqual(r.results.steps.map((s: { subscriptions: number }) => s.subscriptions), [1000, 2000]);
    for (const node of ['n1', 'n2', 'n3']) {
      assert.equal(r.results.steps[1].subsByNode[node] - r.results.baseline.subs[node], 2000, `${node} holds the interest`);
      assert.equal(r.results.wildcards.subsAfter[node] - r.results.wildcards.subsBefore[node], 32, `${node} wildcards`);
    }
    assert.deepEqual(r.results.wildcardFanout.map((f: { subscribers: number; messages: number }) => `${f.subscribers}x${f.messages}`), ['1x200', '3x200']);
  });

  it('delivery-cost (both live-subscription modes: every message to a held channel delivered, none of the others)', async () => {
    const r = await bench(['delivery-cost', '--clients', '20', '--rate', '100', '--duration-s', '1']);
    assert.deepEqual(r.results.phases.map((p: { mode: string; phase: string }) => `${p.mode} ${p.phase}`), [
      'channel idle', 'channel delivered', 'channel not held', 'all idle', 'all delivered', 'all not held',
    ]);
    for (const p of r.results.phases) {
      if (p.phase === 'delivered') assert.ok(p.written > 0 && p.delivered === p.written, `${p.mode}: ${p.written} written, ${p.delivered} delivered`);
      if (p.phase === 'not held') assert.ok(p.written > 0 && p.delivered === 0, `${p.mode} not held: ${p.delivered} delivered`);
    }
  });

  it('catch-up (whole-stream scans keep exactly the channels of one gateway in 20)', async () => {
    const r = await bench(['catch-up', '--messages', '500', '--channels', '50', '--gateways', '1,2']);
    assert.deepEqual(r.results.runs.map((x: { replicas: number; gateways: number }) => `R${x.replicas} x${x.gateways}`), ['R1 x1', 'R1 x2', 'R3 x1', 'R3 x2']);
    // Channels 0, 20 and 40 of 50, ten messages each.
    for (const run of r.results.runs) assert.equal(run.kept, 30, `R${run.replicas} x${run.gateways}`);
  });

  it('refuses a client count over the open-files limit with a clear message', async () => {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'idle', '--clients', '100000000'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      child.once('error', reject);
      child.once('exit', (c) => resolve({ code: c, stderr: err }));
    });
    assert.equal(code, 1);
    assert.match(stderr, /open-files limit/);
  });
});
