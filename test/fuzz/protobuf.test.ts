import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { decodeRequestBatch } from '../../src/wire/protobuf.ts';
import { newUser, signRaw } from '../helpers/channels.ts';
import { corpusProperties, fuzz, hexBytes } from '../helpers/fuzz.ts';
import { decodeResponseBatch, requestBatch } from '../helpers/protobuf.ts';
import { within } from '../helpers/wait.ts';
import { exchange, faults, startFuzzServer, type FuzzServer } from './server-fixture.ts';

/**
 * Protobuf requests (spec §3.4, §5.2, §5.3) on every way in: the backend's
 * `POST /bitrix/pub/?binaryMode=true`, a client's `POST /bitrix/rest/` and a binary-mode
 * WebSocket frame. Arbitrary bytes and mutated valid encodings of every request type get
 * an answer or the protocol's refusal (4012–4021), never a 5xx, a 1011 or a crash, and
 * the subscriber held open receives every message published between inputs.
 */

const SUITE = 'protobuf';

let s: FuzzServer;
before(async () => {
  s = await startFuzzServer();
});
after(async () => {
  await s?.stop();
});

const bytes = (min: number, max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));

/** A receiver or ChannelId: right or wrong id length, private or public, signed right, wrong or not at all. */
const receiver = fc
  .record({ id: fc.oneof({ weight: 4, arbitrary: bytes(16, 16) }, bytes(0, 20)), isPrivate: fc.option(fc.boolean(), { nil: undefined }), sig: fc.constantFrom('right', 'right', 'random', 'none') })
  .chain((r) =>
    (r.sig === 'random' ? bytes(0, 24) : fc.constant(undefined)).map((random) => ({
      id: r.id,
      ...(r.isPrivate === undefined ? {} : { isPrivate: r.isPrivate }),
      ...(r.sig === 'right' ? { signature: signRaw(`public:${r.id.toString('hex')}`) } : random === undefined ? {} : { signature: random }),
    })),
  );

const request = fc.oneof(
  fc
    .array(
      fc.record(
        {
          receivers: fc.array(receiver, { maxLength: 3 }),
          sender: fc.record({ type: fc.nat({ max: 3 }), id: bytes(0, 16) }, { requiredKeys: [] }),
          body: fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ unit: 'binary', maxLength: 40 })),
          expiry: fc.oneof(fc.nat({ max: 100_000 }), fc.constant(0xffffffff)),
          type: fc.string({ maxLength: 10 }),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    )
    .map((messages) => ({ incomingMessages: { messages } })),
  fc.array(receiver, { maxLength: 4 }).map((channels) => ({ channelStats: { channels } })),
  fc.constant({ serverStats: {} }),
  fc.constant({}),
);

/** A valid RequestBatch of one or more requests (only the first is processed). */
const validEncoding = fc.array(request, { minLength: 1, maxLength: 2 }).map(([first, ...rest]) => {
  const head = requestBatch(first!);
  return rest.length === 0 ? head : Buffer.concat([head, ...rest.map((r) => requestBatch(r))]);
});

type Mutation = { op: 'flip'; at: number; bit: number } | { op: 'delete'; at: number; n: number } | { op: 'insert'; at: number; data: number[] } | { op: 'truncate'; at: number } | { op: 'repeat'; at: number; n: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: fc.array(fc.oneof(fc.constantFrom(0x00, 0x08, 0x0a, 0x12, 0x1a, 0x7f, 0x80, 0xff), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % b.length;
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[at]! ^= 1 << m.bit;
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.data), b.subarray(at)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'repeat':
        b = Buffer.concat([b.subarray(0, at + m.n), b.subarray(at)]);
        break;
    }
  }
  return b;
}

/** The bytes to send: noise, a valid encoding, or a valid encoding mutated a few times. */
const payload = fc.oneof(bytes(0, 300), { weight: 2, arbitrary: validEncoding }, { weight: 2, arbitrary: fc.tuple(validEncoding, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) => mutate(b, ms)) });
/** Corpus inputs give the payload as hex. */
const decodeHexArgs = (input: unknown): [Buffer] => [Buffer.from(hexBytes((input as unknown[])[0]))];

const REFUSAL = /^40(1[2-9]|2[01]): /;

async function post(path: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`;
  return exchange(s.app.port, Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

function assertHttpAnswer(r: { status: number; body: Buffer }, what: string, sent?: Buffer): void {
  if (r.status === 200) {
    // A publish answers an empty 200; channel and server stats a ResponseBatch; on the client
    // route a JSON object or array is protocol 5's and is answered in JSON-RPC.
    if (r.body.length > 0 && sent !== undefined && isJson(sent)) assert.equal((JSON.parse(r.body.toString('utf8')) as { jsonrpc?: string }).jsonrpc ?? '2.0', '2.0', what);
    else if (r.body.length > 0) assert.doesNotThrow(() => decodeResponseBatch(r.body), what);
    return;
  }
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.body.toString('latin1')}`);
  assert.match(r.body.toString('latin1'), REFUSAL, what);
}

function isJson(b: Buffer): boolean {
  if (b[0] !== 0x7b && b[0] !== 0x5b) return false;
  try {
    JSON.parse(b.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

describe('protobuf requests (property)', () => {
  it('decoding any bytes gives requests of the declared shape or throws', async () => {
    const isBytes = (v: unknown): boolean => v === undefined || v instanceof Uint8Array;
    const isReceivers = (list: unknown): boolean =>
      list === undefined || (Array.isArray(list) && list.every((r) => isBytes(r.id) && isBytes(r.signature) && (r.isPrivate === undefined || typeof r.isPrivate === 'boolean')));
    await fuzz(
      SUITE,
      'decode',
      fc.property(payload, (b) => {
        let requests;
        try {
          requests = decodeRequestBatch(b);
        } catch (err) {
          assert.ok(err instanceof Error);
          return true;
        }
        for (const r of requests) {
          for (const m of r.incomingMessages?.messages ?? []) {
            assert.ok(isReceivers(m.receivers));
            assert.ok(m.body === undefined || typeof m.body === 'string');
            assert.ok(m.expiry === undefined || (Number.isInteger(m.expiry) && m.expiry >= 0));
            assert.ok(m.type === undefined || typeof m.type === 'string');
          }
          assert.ok(isReceivers(r.channelStats?.channels));
        }
        return true;
      }),
      { runs: 3000, decode: decodeHexArgs },
    );
  });

  it('the backend route answers every payload or refuses it with the protocol code; the witness misses nothing', async () => {
    await fuzz(
      SUITE,
      'trusted',
      fc.asyncProperty(payload, async (b) => {
        assertHttpAnswer(await post('/bitrix/pub/?binaryMode=true', b), 'trusted');
        await s.witness.check();
        return true;
      }),
      { runs: 400, decode: decodeHexArgs },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('the client route answers every payload or refuses it with the protocol code; the witness misses nothing', async () => {
    const user = newUser();
    await fuzz(
      SUITE,
      'rest',
      fc.asyncProperty(payload, async (b) => {
        assertHttpAnswer(await post(`/bitrix/rest/?CHANNEL_ID=${user.token}`, b), 'rest', Buffer.from(b));
        await s.witness.check();
        return true;
      }),
      { runs: 400, decode: decodeHexArgs },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('a binary WebSocket frame is answered or closes the socket with the protocol code, never 1011', async () => {
    const user = newUser();
    // Sent after each fuzz frame: its answer means the fuzz frame did not close the socket.
    const probeId = Buffer.alloc(16, 0xab);
    const probe = requestBatch({ channelStats: { channels: [{ id: probeId, signature: signRaw(`public:${probeId.toString('hex')}`) }] } });
    await fuzz(
      SUITE,
      'websocket',
      fc.asyncProperty(payload, async (b) => {
        const ws = new WebSocket(`${s.app.wsBase}/bitrix/subws/?CHANNEL_ID=${user.token}&binaryMode=true`);
        const outcome = new Promise<{ closed: number } | { answered: true }>((resolve, reject) => {
          ws.on('error', reject);
          ws.on('close', (code) => resolve({ closed: code }));
          ws.on('message', (data: Buffer) => {
            const stats = decodeResponseBatch(data).flatMap((r) => r.channelStats ?? []);
            if (stats.some((c) => c.id === probeId.toString('hex'))) resolve({ answered: true });
          });
          ws.on('open', () => {
            ws.send(b, { binary: true });
            ws.send(probe, { binary: true });
          });
        });
        const result = await within('an answer or a close', outcome, 5_000);
        ws.terminate();
        if ('closed' in result) assert.ok(result.closed >= 4012 && result.closed <= 4021, `closed with ${result.closed}`);
        return true;
      }),
      { runs: 300, decode: decodeHexArgs },
    );
    await s.witness.check();
    assert.deepEqual(faults(s.app), []);
    assert.deepEqual(s.app.logs.find('client request failed'), []);
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['decode', 'trusted', 'rest', 'websocket'].includes(name), name);
  });
});
