import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { interpolate, type HostLookup } from './interpolation.ts';
import { mapping, sequence, type Mapping } from './shape.ts';
import { readYaml } from './yaml.ts';

/** A compose file as Compose sees it, and as written (before interpolation). */
export interface ComposeFile {
  rel: string;
  /** Compose's project folder: relative paths in the file start here. */
  dir: string;
  doc: Mapping;
  written: Mapping;
  services: Record<string, Mapping>;
}

/**
 * The host of a plain `docker compose up`: only the variables the file requires
 * (${NAME:?…}) are set, everything else takes its default.
 */
const minimalHost: HostLookup = (name, required) => (required ? `${name.toLowerCase()}-from-the-host` : undefined);

function interpolateAll(value: unknown): unknown {
  if (typeof value === 'string') return interpolate(value, minimalHost);
  if (Array.isArray(value)) return value.map(interpolateAll);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v)]));
  return value;
}

export function loadCompose(rel: string): ComposeFile {
  const written = mapping(readYaml(rel), rel);
  const doc = mapping(interpolateAll(written), rel);
  const services = Object.fromEntries(Object.entries(mapping(doc.services, `${rel}: services`)).map(([name, s]) => [name, mapping(s, `${rel}: services.${name}`)]));
  return { rel, dir: posix.dirname(rel), doc, written, services };
}

/** A path of the compose file, relative to the repository root. */
export const hostPath = (c: ComposeFile, p: string): string => posix.normalize(posix.join(c.dir, p));

/** `environment` as a mapping, from either of Compose's two forms. */
function environmentOf(service: Mapping, what: string): Record<string, unknown> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return mapping(env, `${what}.environment`);
  return Object.fromEntries(env.map((entry) => {
    const [key, ...rest] = String(entry).split('=');
    return [key!, rest.length > 0 ? rest.join('=') : null];
  }));
}

/** The environment a service's container gets (a bare `NAME` takes the host's value: unset here). */
export function serviceEnv(service: Mapping, what: string): Record<string, string> {
  return Object.fromEntries(Object.entries(environmentOf(service, what)).flatMap(([k, v]) => (v === null || v === undefined ? [] : [[k, String(v)]])));
}

/** An environment value as written in the file, before interpolation. */
export function writtenEnv(c: ComposeFile, service: string): Record<string, unknown> {
  const written = mapping(mapping(c.written.services, 'services')[service], service);
  return environmentOf(written, service);
}

export interface PortMapping {
  hostIp?: string;
  host?: number;
  container: number;
  raw: string;
}

/** Short ([HOST_IP:][HOST:]CONTAINER[/PROTO]) and long port syntax. */
export function portMappings(service: Mapping, what: string): PortMapping[] {
  return sequence(service.ports ?? [], `${what}.ports`).map((p) => {
    if (p !== null && typeof p === 'object') {
      const long = mapping(p, `${what}.ports`);
      const host = long.published === undefined ? undefined : Number(long.published);
      return { container: Number(long.target), ...(host !== undefined ? { host } : {}), ...(long.host_ip ? { hostIp: String(long.host_ip) } : {}), raw: JSON.stringify(long) };
    }
    const raw = String(p);
    const parts = raw.replace(/\/(tcp|udp)$/, '').split(':');
    assert.ok(parts.length <= 3 && parts.every((x) => /^[\d.]+$/.test(x)), `${what}: cannot read port ${raw}`);
    const host = parts.length >= 2 ? Number(parts.at(-2)) : undefined;
    return { raw, container: Number(parts.at(-1)), ...(host !== undefined ? { host } : {}), ...(parts.length === 3 ? { hostIp: parts[0]! } : {}) };
  });
}

export interface VolumeMount {
  source: string;
  target: string;
  readOnly: boolean;
  /** A named volume, not a bind mount of a host path. */
  named: boolean;
}

/** Short (source:target[:ro]) and long volume syntax. */
export function volumeMounts(service: Mapping, what: string): VolumeMount[] {
  return sequence(service.volumes ?? [], `${what}.volumes`).map((v) => {
    if (v !== null && typeof v === 'object') {
      const long = mapping(v, `${what}.volumes`);
      return { source: String(long.source ?? ''), target: String(long.target), readOnly: long.read_only === true, named: long.type === 'volume' };
    }
    const [source, target, mode] = String(v).split(':');
    assert.ok(source && target, `${what}: cannot read volume ${String(v)}`);
    return { source, target, readOnly: mode?.split(',').includes('ro') ?? false, named: !/^[./~]/.test(source) };
  });
}

/** The repository file a container path of this service comes from, through its bind mounts. */
export function mountedFile(c: ComposeFile, service: Mapping, what: string, containerPath: string): string {
  for (const m of volumeMounts(service, what)) {
    if (m.named || m.source === '') continue;
    if (containerPath === m.target) return hostPath(c, m.source);
    if (containerPath.startsWith(`${m.target}/`)) return hostPath(c, posix.join(m.source, containerPath.slice(m.target.length + 1)));
  }
  assert.fail(`${what}: nothing is mounted at ${containerPath}`);
}

/** Compose durations (30s, 1m30s, 500ms) in milliseconds. */
export function composeMs(value: unknown, what: string): number {
  const s = String(value ?? '');
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)];
  assert.ok(s !== '' && parts.map((m) => m[0]).join('') === s, `${what}: cannot read duration "${s}"`);
  return parts.reduce((total, m) => total + Number(m[1]) * units[m[2]!]!, 0);
}

/** The healthcheck command, as ['CMD', ...argv] or ['CMD-SHELL', script]. */
export function healthcheckArgv(service: Mapping, what: string): string[] {
  const hc = mapping(service.healthcheck, `${what}.healthcheck`);
  assert.notEqual(hc.disable, true, `${what}: healthcheck disabled`);
  const argv = typeof hc.test === 'string' ? ['CMD-SHELL', hc.test] : sequence(hc.test, `${what}.healthcheck.test`).map(String);
  assert.ok(['CMD', 'CMD-SHELL'].includes(argv[0]!), `${what}: healthcheck.test starts with CMD or CMD-SHELL`);
  return argv;
}

/** The jetpull services: the one that builds deploy/Dockerfile and those that reuse its image. */
export function jetpullServices(c: ComposeFile): Array<[string, Mapping]> {
  const built = Object.entries(c.services).filter(([, s]) => s.build !== undefined && s.build !== null);
  assert.equal(built.length, 1, `${c.rel}: exactly one service builds the jetpull image`);
  const [name, svc] = built[0]!;
  const build = mapping(svc.build, `${name}.build`);
  const dockerfile = posix.normalize(posix.join(hostPath(c, String(build.context ?? '.')), String(build.dockerfile ?? 'Dockerfile')));
  assert.equal(dockerfile, 'deploy/Dockerfile', `${name} builds deploy/Dockerfile`);
  assert.ok(typeof svc.image === 'string' && svc.image !== '', `${name}: "image" names the built image so other services can reuse it`);
  return Object.entries(c.services).filter(([, s]) => s.image === svc.image);
}

/** Services running the official NATS image. */
export const natsServices = (c: ComposeFile): Array<[string, Mapping]> => Object.entries(c.services).filter(([, s]) => /^nats:/.test(String(s.image)));
