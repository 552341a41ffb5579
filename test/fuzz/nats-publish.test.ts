import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { sign } from '../helpers/channels.ts';
import { corpusProperties, fuzz, hexBytes } from '../helpers/fuzz.ts';
import { eventually } from '../helpers/wait.ts';
import { faults, startFuzzServer, type FuzzServer } from './server-fixture.ts';

/**
 * The NATS publish envelope (api/nats-publish-api.ts) over a real nats-server: any bytes
 * on the publish subject are answered, with mids or with an error of ours (never
 * PUSH_ERR_INTERNAL, never silence; a batch with one of those per message); valid publishes in between are still stored and
 * delivered; and a body is delivered as exactly the JSON that was sent.
 */

const SUITE = 'nats-publish';
const SUBJECT = 'push.publish';

let s: FuzzServer;
let nc: NatsConnection;
before(async () => {
  s = await startFuzzServer();
  nc = await connect({ servers: s.nats.url });
});
after(async () => {
  await nc?.close();
  await s?.stop();
});

interface Reply {
  mids?: unknown;
  error?: { code?: unknown; message?: unknown; temporary?: unknown };
  results?: unknown;
}

async function requestRaw(data: Uint8Array): Promise<Reply> {
  const msg = await nc.request(SUBJECT, data, { timeout: 5_000 });
  return JSON.parse(msg.string()) as Reply;
}

function assertReply(r: Reply, what: string, batch: boolean): void {
  const keys = Object.keys(r);
  assert.equal(keys.length, 1, `${what}: ${JSON.stringify(r)}`);
  if (r.results !== undefined) {
    // A batch is answered per message, each as a single publish.
    assert.ok(batch && Array.isArray(r.results) && r.results.length > 0, `${what}: ${JSON.stringify(r)}`);
    for (const each of r.results as Reply[]) assertReply(each, what, false);
    return;
  }
  if (r.mids !== undefined) {
    assert.ok(Array.isArray(r.mids) && r.mids.length > 0, what);
    for (const mid of r.mids) assert.match(String(mid), /^\d{26}$/, what);
    return;
  }
  const e = r.error;
  assert.ok(e !== undefined, `${what}: ${JSON.stringify(r)}`);
  assert.match(String(e.code), /^PUSH_ERR_/, what);
  assert.notEqual(e.code, 'PUSH_ERR_INTERNAL', `${what}: ${JSON.stringify(r)}`);
  assert.equal(typeof e.message, 'string', what);
  assert.equal(typeof e.temporary, 'boolean', what);
}

const natsPublish = async (priv: string, body: string): Promise<void> => {
  const r = await requestRaw(new TextEncoder().encode(JSON.stringify({ channels: [priv], body })));
  assert.ok(Array.isArray(r.mids) && r.mids.length === 1, `the witness publish was not stored: ${JSON.stringify(r)}`);
};

const HEX = '0123456789abcdef';
const id = fc.string({ unit: fc.constantFrom(...HEX), minLength: 32, maxLength: 32 });

/** A channel entry of any kind the envelope takes, and the usual ways to get one wrong. */
const channel = fc.oneof(
  id,
  fc.tuple(id, id).map(([p, q]) => `${p}:${q}.${sign(`${p}:${q}`)}`),
  fc.tuple(id, id).map(([p, q]) => `${p}:${q}.${sign(`${q}:${p}`)}`),
  fc.tuple(id, fc.array(id, { maxLength: 3 })).map(([p, more]) => [p, ...more].join('/')),
  fc.record({ id, isPrivate: fc.boolean() }, { requiredKeys: ['id'] }),
  fc.record({ id: fc.oneof(id.map((v) => v.toUpperCase()), fc.string({ maxLength: 40 })), isPrivate: fc.jsonValue({ maxDepth: 0 }), extra: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }),
  fc.jsonValue({ maxDepth: 1 }),
);
/** An envelope with every field right, wrong or missing, and stray fields. */
const envelope = fc.record(
  {
    channels: fc.oneof({ weight: 4, arbitrary: fc.array(channel, { maxLength: 4 }) }, fc.jsonValue({ maxDepth: 2 }), fc.array(id, { minLength: 101, maxLength: 120 })),
    body: fc.oneof(fc.string({ unit: 'binary', maxLength: 50 }), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })), fc.jsonValue({ maxDepth: 3 })),
    expiry: fc.oneof(fc.nat({ max: 200_000 }), fc.jsonValue({ maxDepth: 0 }), fc.constantFrom(-1, 0.5, 1e21, Number.MAX_SAFE_INTEGER)),
    id: fc.oneof(fc.string({ maxLength: 20 }), fc.nat({ max: 200 }).map((n) => 'k'.repeat(n)), fc.jsonValue({ maxDepth: 0 })),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: [] },
);

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
/** Request bytes: noise, any JSON, an envelope (maybe cut short), a batch of them, or a deeply nested one. */
const requestBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.json({ maxDepth: 3 }).map(utf8),
  { weight: 4, arbitrary: envelope.map((e) => utf8(JSON.stringify(e))) },
  { weight: 2, arbitrary: fc.record({ messages: fc.oneof({ weight: 4, arbitrary: fc.array(envelope, { maxLength: 4 }) }, fc.jsonValue({ maxDepth: 1 })), extra: fc.jsonValue({ maxDepth: 0 }) }, { requiredKeys: ['messages'] }).map((b) => utf8(JSON.stringify(b))) },
  fc.tuple(envelope, fc.nat()).map(([e, cut]) => {
    const text = JSON.stringify(e);
    return utf8(text.slice(0, cut % (text.length + 1)));
  }),
  fc.integer({ min: 1, max: 20_000 }).map(nestedBody),
);
function nestedBody(depth: number): Uint8Array {
  return utf8(`{"channels":["${'a'.repeat(32)}"],"body":${'['.repeat(depth)}1${']'.repeat(depth)}}`);
}
/** Corpus inputs: the request as hex, or `{"nestedBody": <depth>}` for the deeply nested envelope. */
const decodeArgs = (input: unknown): [Uint8Array] => {
  const first = (input as unknown[])[0] as string | { nestedBody: number };
  return [typeof first === 'string' ? hexBytes(first) : nestedBody(first.nestedBody)];
};

describe('nats publish envelope (property)', () => {
  it('any request bytes are answered with mids or an error of ours; valid publishes in between are stored and delivered', async () => {
    await fuzz(
      SUITE,
      'answered',
      fc.asyncProperty(requestBytes, async (data) => {
        assertReply(await requestRaw(data), Buffer.from(data).toString('utf8').slice(0, 200), true);
        await s.witness.check(natsPublish);
        return true;
      }),
      { runs: 700, decode: decodeArgs },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('a JSON body is delivered as exactly the JSON that was sent', async () => {
    const jsonKey = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'module_id', '\u2028', ''));
    const value = fc.letrec((tie) => ({
      json: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 0 }), fc.array(tie('json'), { maxLength: 3 }), fc.dictionary(jsonKey, tie('json'), { maxKeys: 3 })),
    })).json;
    let n = 0;
    await fuzz(
      SUITE,
      'body',
      fc.asyncProperty(fc.array(fc.tuple(jsonKey, value), { maxLength: 5 }), fc.boolean(), async (entries, asString) => {
        const tag = `b${n++}`;
        // Written out by hand so that any key, __proto__ and repeats included, is in the text sent;
        // "command" comes first and only once, to tell the witness's messages apart.
        const members = [`"command":${JSON.stringify(tag)}`, ...entries.filter(([k]) => k !== 'command').map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)];
        const text = `{${members.join(',')}}`;
        const request = `{"channels":[${JSON.stringify(s.witness.user.priv)}],"body":${asString ? JSON.stringify(text) : text}}`;
        const reply = await requestRaw(utf8(request));
        assert.ok(Array.isArray(reply.mids) && reply.mids.length === 1, JSON.stringify(reply));
        const got = await eventually(`message ${tag}`, () => s.witness.received().find((m) => (m.text as { command?: unknown }).command === tag), 5_000, 2);
        assert.deepEqual(got.text, JSON.parse(text));
        return true;
      }),
      { runs: 400 },
    );
    assert.deepEqual(faults(s.app), []);
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['answered', 'body'].includes(name), name);
  });
});
