import { createHmac } from 'node:crypto';
import type { z } from 'zod';
import type { ConfigIssue } from './issues.ts';
import type { ConfigSchema } from './schema.ts';

/** Rules that involve more than one setting, checked once the schema accepted each of them. */
export function crossFieldIssues(config: z.infer<typeof ConfigSchema>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const owners = new Map<string, number>();
  config.servers.forEach((server, i) => {
    if (server.port !== 0) {
      const key = `${server.hostname}:${server.port}`;
      const owner = owners.get(key);
      if (owner !== undefined) {
        issues.push({ path: ['servers', String(i)], message: `${key} is already used by servers.${owner}`, fix: 'give each listener its own port, or merge their routes into one listener' });
      }
      owners.set(key, i);
    }
    if (Object.values(server.routes).every((r) => r === undefined)) {
      issues.push({ path: ['servers', String(i), 'routes'], message: 'serves no route', fix: 'add at least one of sub, pub, rest, stat (e.g. "sub": "/bitrix/subws/"), or remove the listener' });
    }
  });
  if (config.security.key === undefined && (config.security.previousKeys?.length ?? 0) > 0) {
    issues.push({ path: ['security', 'previousKeys'], message: 'needs security.key (the key that signs now)', fix: 'set security.key to the portal\'s current signature_key' });
  }
  if (config.security.key !== undefined && !isHash(config.security.algo)) {
    issues.push({ path: ['security', 'algo'], message: `"${config.security.algo}" is not a hash this Node.js supports`, fix: 'use the pull module\'s signature_algo, normally "sha1" (or "sha256")' });
  }
  if (config.nats.passwordFile !== undefined && config.nats.password !== undefined) {
    issues.push({ path: ['nats', 'passwordFile'], message: 'set together with nats.password', fix: 'set the password or a file holding it, not both' });
  }
  if (config.nats.passwordFile !== undefined && config.nats.user === undefined) {
    issues.push({ path: ['nats', 'passwordFile'], message: 'needs nats.user', fix: 'set nats.user to the NATS user the password belongs to (deploy/nats/auth.conf: gateway, publisher or jetpull)' });
  }
  if (config.security.signedPublishing === 'required' && config.security.key === undefined) {
    issues.push({ path: ['security', 'signedPublishing'], message: '"required" needs security.key to check signatures with', fix: 'set security.key to the portal\'s signature_key, or signedPublishing to "off"' });
  }
  if (config.gateway.maxOutboxBytes < 2 * config.limits.maxPayloadBytes) {
    // A replay page is half the outbox and must hold the largest message.
    issues.push({
      path: ['gateway', 'maxOutboxBytes'],
      message: 'must be at least twice limits.maxPayloadBytes, or the largest message can never be replayed',
      fix: `raise it to ${2 * config.limits.maxPayloadBytes} or more, or lower limits.maxPayloadBytes`,
    });
  }
  if (config.gateway.coalesceMaxBytes > config.gateway.maxOutboxBytes) {
    issues.push({
      path: ['gateway', 'coalesceMaxBytes'],
      message: 'must not exceed gateway.maxOutboxBytes, or a full frame closes its connection as too slow',
      fix: `lower it to ${config.gateway.maxOutboxBytes} or less, or raise gateway.maxOutboxBytes`,
    });
  }
  if (config.gateway.coalesceWindowMs >= config.gateway.longPollTimeoutMs) {
    issues.push({
      path: ['gateway', 'coalesceWindowMs'],
      message: 'must be shorter than gateway.longPollTimeoutMs',
      fix: `lower it below ${config.gateway.longPollTimeoutMs} (the default is 400)`,
    });
  }
  return issues;
}

function isHash(algo: string): boolean {
  try {
    createHmac(algo, 'probe').update('probe').digest();
    return true;
  } catch {
    return false;
  }
}
