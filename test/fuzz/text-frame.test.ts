import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corpusProperties } from '../helpers/fuzz.ts';
import { checkFraming } from './text-frame-property.ts';

/**
 * Text framing (spec §3.2), as the official client reads it: any JSON bodies, written
 * compact, PHP-style or pretty-printed, concatenated into one frame, come back as exactly
 * the messages put in. Bodies holding the framing markers are text-frame-markers.test.ts.
 */

const SUITE = 'text-frame';

describe('text framing (property)', () => {
  it('the official client reads back exactly the messages of a frame (bodies without markers)', async () => {
    await checkFraming(SUITE, 'parses-back', false, 2000);
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['parses-back'].includes(name), name);
  });
});
