import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import type { ListenerConfig } from '../config/schema.ts';

type Ssl = NonNullable<ListenerConfig['ssl']>;

/**
 * The files of `servers[].ssl` read into TLS options, as Push server 2.0 passed them
 * to https.createServer. Read again on SIGHUP, so a renewed certificate is served to
 * new connections without a restart (open ones keep theirs).
 */
export function readTlsOptions(ssl: Ssl): SecureContextOptions & { honorCipherOrder?: boolean } {
  return {
    key: readFileSync(ssl.key),
    cert: readFileSync(ssl.cert),
    ...(ssl.ca ? { ca: readFileSync(ssl.ca) } : {}),
    ...(ssl.dhparam ? { dhparam: readFileSync(ssl.dhparam) } : {}),
    ...(ssl.ciphers ? { ciphers: ssl.ciphers } : {}),
    ...(ssl.honorCipherOrder === undefined ? {} : { honorCipherOrder: ssl.honorCipherOrder }),
  };
}
