import { readFileSync } from 'node:fs';

/**
 * deploy/nats/auth.conf as shipped, with test passwords in place of its environment
 * references, for a test nats-server; and what its log says about permissions.
 */

export const NATS_PASSWORDS = { gateway: 'gwTestPass1', publisher: 'pubTestPass2', jetpull: 'allTestPass3' } as const;

const VARIABLES: Record<string, string> = {
  NATS_GATEWAY_PASSWORD: NATS_PASSWORDS.gateway,
  NATS_PUBLISHER_PASSWORD: NATS_PASSWORDS.publisher,
  NATS_JETPULL_PASSWORD: NATS_PASSWORDS.jetpull,
};

export function shippedAuthBlock(): string {
  const shipped = readFileSync(new URL('../../deploy/nats/auth.conf', import.meta.url), 'utf8');
  const block = Object.entries(VARIABLES).reduce((text, [name, value]) => text.replaceAll(`$${name}`, JSON.stringify(value)), shipped);
  if (block.includes('$NATS_')) throw new Error('deploy/nats/auth.conf refers to a password variable the tests do not know');
  return block;
}

/** The permission violations among a server's log lines. */
export const violationsIn = (log: readonly string[]): string[] => log.filter((l) => /violation/i.test(l));

/** A violation line; 2.9 writes `User "u", Subject "s"`, 2.11+ `"$G/user:u" - … Subject "s"`. */
export function violated(log: readonly string[], kind: 'Publish' | 'Subscription', user: string, subject: string): boolean {
  return violationsIn(log).some((l) => l.includes(`${kind} Violation`) && (l.includes(`User "${user}"`) || l.includes(`user:${user}"`)) && l.includes(`Subject "${subject}`));
}
