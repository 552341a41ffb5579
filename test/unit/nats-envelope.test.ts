import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { plainEnvelope, publishEnvelopeSchema, readEnvelope } from '../../src/api/nats-publish-envelope.ts';
import { BadRequestError } from '../../src/errors/app-error.ts';

const MAX = 3;
const schema = publishEnvelopeSchema(MAX);
const HEX = '0123456789abcdef';
const id = fc.string({ unit: fc.constantFrom(...HEX), minLength: 32, maxLength: 32 });

/** Envelopes near the plain form and every way out of it, as JSON.parse hands them over. */
const field = {
  channels: fc.oneof(
    { weight: 8, arbitrary: fc.array(id, { minLength: 1, maxLength: MAX }) },
    fc.array(fc.oneof({ weight: 4, arbitrary: id }, fc.constant(''), fc.record({ id }), fc.jsonValue({ maxDepth: 0 })), { maxLength: MAX + 1 }),
    fc.jsonValue({ maxDepth: 1 }),
  ),
  body: fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 3 }) }, { weight: 3, arbitrary: fc.object({ maxDepth: 1 }) }, fc.constant(''), fc.jsonValue({ maxDepth: 2 })),
  expiry: fc.oneof({ weight: 4, arbitrary: fc.nat() }, fc.constantFrom(-1, -0, 0.5, 1e21, 2 ** 53 - 1, 2 ** 53), fc.jsonValue({ maxDepth: 0 })),
  id: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 3 }) }, fc.constantFrom('', 'k'.repeat(128), 'k'.repeat(129)), fc.jsonValue({ maxDepth: 0 })),
};
const envelope = fc.oneof(
  { weight: 6, arbitrary: fc.record(field, { requiredKeys: ['channels', 'body'] }).map((e) => JSON.parse(JSON.stringify(e)) as unknown) },
  fc.record({ ...field, extra: fc.jsonValue({ maxDepth: 0 }) }, { requiredKeys: [] }).map((e) => JSON.parse(JSON.stringify(e)) as unknown),
  fc.constantFrom('{"__proto__":1,"channels":["x"],"body":"y"}', '[]', 'null', '"s"').map((t) => JSON.parse(t) as unknown),
);

const defined = (o: object): object => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

describe('nats publish envelope', () => {
  it('the plain form is read by hand only where the schema reads it the same (property)', () => {
    let plain = 0;
    fc.assert(
      fc.property(envelope, (json) => {
        const fast = plainEnvelope(json, MAX);
        if (fast === undefined) return;
        plain++;
        const parsed = schema.safeParse(json);
        assert.ok(parsed.success, `taken by hand, refused by the schema: ${JSON.stringify(json)}`);
        assert.deepEqual(defined(fast), defined(parsed.data));
        assert.equal(fast.body, parsed.data.body, 'the body is passed through as parsed');
      }),
      { numRuns: 3000 },
    );
    assert.ok(plain > 100, `only ${plain} plain envelopes generated`);
  });

  it('anything else goes through the schema, which names what is wrong', () => {
    assert.deepEqual(readEnvelope({ channels: [{ id: 'a'.repeat(32) }], body: 'x' }, schema, MAX), { channels: [{ id: 'a'.repeat(32), isPrivate: true }], body: 'x' });
    assert.throws(() => readEnvelope({ channels: ['x'], body: 'x', extra: 1 }, schema, MAX, 'messages[2]: '), (err: unknown) => err instanceof BadRequestError && /^messages\[2\]: .*extra/.test(err.message));
    assert.throws(() => readEnvelope({ channels: ['a', 'b', 'c', 'd'], body: 'x' }, schema, MAX), /at most 3 channels/);
  });
});
