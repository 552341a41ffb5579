import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { OriginPolicy } from '../../src/http/origin-policy.ts';

describe('OriginPolicy', () => {
  it('allows every origin when the list is empty', () => {
    const p = new OriginPolicy([]);
    assert.equal(p.restricted, false);
    assert.equal(p.allows('https://anything.example'), true);
  });

  it('matches exact origins case-insensitively and wildcards on whole labels, port included', () => {
    const p = new OriginPolicy(['https://portal.example.com', 'https://*.corp.example:8443']);
    assert.equal(p.allows('https://portal.example.com'), true);
    assert.equal(p.allows('HTTPS://Portal.Example.com'), true);
    assert.equal(p.allows('http://portal.example.com'), false);
    assert.equal(p.allows('https://portal.example.com:444'), false);
    assert.equal(p.allows('https://a.corp.example:8443'), true);
    assert.equal(p.allows('https://a.b.corp.example:8443'), true);
    assert.equal(p.allows('https://a.corp.example'), false);
    assert.equal(p.allows('https://corp.example:8443'), false);
    assert.equal(p.allows('https://evilcorp.example:8443'), false);
    assert.equal(p.allows('https://x/.corp.example:8443'), false);
    assert.equal(p.allows(['https://portal.example.com', 'https://portal.example.com']), false);
    assert.equal(p.allows(undefined), true);
  });

  it('reads a comma separated list from the environment and refuses what is not an origin', () => {
    const { config } = loadConfig({ argv: [], env: { PUSH_SECURITY__ALLOWED_ORIGINS: 'https://a.example, https://*.b.example' } });
    assert.deepEqual(config.security.allowedOrigins, ['https://a.example', 'https://*.b.example']);
    assert.throws(() => loadConfig({ argv: [], env: { PUSH_SECURITY__ALLOWED_ORIGINS: 'https://a.example/path' } }), /security\.allowedOrigins/);
  });
});
