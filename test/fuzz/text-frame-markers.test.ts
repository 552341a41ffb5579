import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corpusProperties } from '../helpers/fuzz.ts';
import { checkFraming } from './text-frame-property.ts';

/**
 * Text framing with bodies that hold the framing markers themselves (`#!NGINXNMS!#`,
 * `#!NGINXNME!#`, inside JSON strings): the message, and the ones around it in the same
 * frame, still reach the official client exactly as they were put in.
 */

const SUITE = 'text-frame-markers';

describe('text framing with markers in bodies (property)', () => {
  it('the official client reads back exactly the messages of a frame (one body holds a marker)', async () => {
    await checkFraming(SUITE, 'parses-back', true, 1000);
  });

  it('every corpus entry names a property of this suite', () => {
    for (const name of corpusProperties(SUITE)) assert.ok(['parses-back'].includes(name), name);
  });
});
