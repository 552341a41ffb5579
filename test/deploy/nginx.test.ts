import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../../src/config/schema.ts';
import { ClientAddress } from '../../src/http/client-address.ts';
import { healthcheckArgv, jetpullServices, loadCompose, mountedFile, portMappings, volumeMounts } from './lib/compose.ts';
import { jetpullConfig, listenerPort } from './lib/jetpull-config.ts';
import { directive, directives, nginxBytes, nginxSeconds, readNginxConf, type NginxDirective } from './lib/nginx-conf.ts';
import { referenceProblems } from './lib/nginx-reference.ts';

/**
 * deploy/nginx/nginx.conf against docker-compose.yml: the BitrixVM routes, every
 * jetpull service behind them, WebSocket and long-poll settings.
 */

const c = loadCompose('docker-compose.yml');
const svc = c.services.nginx!;
const configs = new Map(jetpullServices(c).map(([name, s]) => [name, jetpullConfig(name, s)]));
const confFile = mountedFile(c, svc, 'nginx', '/etc/nginx/nginx.conf');
const conf = readNginxConf(confFile);
const http = directive(conf, 'http')?.block;
const upstreams = new Map(directives(http, 'upstream').map((u) => [u.args[0]!, u.block ?? []]));

interface Server {
  block: NginxDirective[];
  ports: number[];
}
const servers: Server[] = directives(http, 'server').map((s) => ({
  block: s.block ?? [],
  ports: directives(s.block, 'listen').map((l) => Number(/(\d+)$/.exec(l.args[0]!)?.[1])),
}));
const published = portMappings(svc, 'nginx');
const serverPublished = (onLoopback: boolean): Server | undefined =>
  servers.find((s) => s.ports.some((p) => published.some((m) => m.container === p && (m.hostIp === '127.0.0.1') === onLoopback)));
const publicServer = serverPublished(false);
const internalServer = serverPublished(true);

const locations = (server: Server | undefined): Map<string, NginxDirective[]> =>
  new Map(directives(server?.block, 'location').map((l) => [l.args.join(' '), l.block ?? []]));
const proxied = (server: Server | undefined): string[] =>
  [...locations(server)].filter(([, b]) => directive(b, 'proxy_pass')).map(([path]) => path).sort();
const byRole = (role: Config['role']): string[] => [...configs].filter(([, cfg]) => cfg.role === role).map(([name]) => name);

/** The upstream a location proxies to; without a URI in proxy_pass, so paths pass unchanged. */
function upstreamOf(loc: NginxDirective[] | undefined): string {
  const target = directive(loc, 'proxy_pass')?.args[0] ?? '';
  const m = /^http:\/\/([\w-]+)$/.exec(target);
  assert.ok(m, `proxy_pass ${target}: an upstream, without a URI so paths pass unchanged`);
  assert.ok(upstreams.has(m[1]!), `upstream ${m[1]} is defined`);
  return m[1]!;
}
const members = (name: string): string[] => directives(upstreams.get(name), 'server').map((s) => s.args[0]!).sort();

// The real nginx (a version with `resolve` in upstreams) checks this file when the compose
// suite starts the stack (npm run test:compose); here it is read with a parser and nginx's
// own directive reference.
describe('deploy: nginx', () => {
  it("uses only directives nginx knows, each in a block that allows it (nginx's directive reference)", () => {
    assert.deepEqual(referenceProblems(conf), [], `${confFile} has directives nginx would reject`);
  });

  it('mounts its config and uses an image that supports run-time upstream resolution', () => {
    assert.equal(confFile, 'deploy/nginx/nginx.conf');
    assert.ok(volumeMounts(svc, 'nginx').every((m) => m.named || m.readOnly), 'config mounted read-only');
    const version = /^nginx:(\d+)\.(\d+)/.exec(String(svc.image));
    assert.ok(version, 'nginx image with a version');
    const usesResolve = [...upstreams.values()].some((u) => directives(u, 'server').some((s) => s.args.includes('resolve')));
    if (usesResolve) {
      // nginx:1.27 images are 1.27.3 or later today; 1.26 and older lack "resolve".
      assert.ok(Number(version[1]) > 1 || Number(version[2]) >= 27, '"resolve" in upstream needs nginx 1.27.3 or newer');
      assert.ok(directive(http, 'resolver'), '"resolve" needs a resolver');
      for (const [name, u] of upstreams) assert.ok(directive(u, 'zone'), `upstream ${name}: "resolve" needs a zone`);
    }
  });

  it('routes /bitrix/subws/, /bitrix/sub/ and /bitrix/rest/ publicly, /bitrix/pub/, /bitrix/api/ and /server-stat/ only internally', () => {
    assert.ok(publicServer, 'a server on the public published port');
    assert.ok(internalServer, 'a server on the 127.0.0.1 published port');
    assert.notEqual(publicServer, internalServer);
    assert.deepEqual(proxied(publicServer), ['/bitrix/rest/', '/bitrix/sub/', '/bitrix/subws/'], 'the public server proxies the browser routes, and nothing else');
    assert.deepEqual(proxied(internalServer), ['/bitrix/api/', '/bitrix/pub/', '/server-stat/'], "the internal server proxies the portal's routes, and nothing else");
    const limits = [...configs.values()].map((cfg) => cfg.limits.maxPayloadBytes);
    for (const server of [publicServer, internalServer]) {
      assert.deepEqual(directive(locations(server).get('/'), 'return')?.args, ['404'], 'anything else is 404');
      const bodyLimit = nginxBytes(directive(server.block, 'client_max_body_size')?.args[0] ?? directive(http, 'client_max_body_size')?.args[0] ?? '1m');
      for (const limit of limits) assert.ok(bodyLimit > limit, `client_max_body_size above limits.maxPayloadBytes (${limit}), so jetpull answers 413 itself`);
    }
    assert.equal(directive(locations(internalServer).get('/bitrix/pub/'), 'proxy_ignore_client_abort')?.args[0], 'on', 'publishes complete when the portal gives up');
  });

  it('upgrades WebSockets and holds long polls on the subscription locations', () => {
    const map = directives(http, 'map').find((m) => m.args.join(' ') === '$http_upgrade $connection_upgrade');
    assert.ok(map, 'map $http_upgrade $connection_upgrade');
    assert.deepEqual(directive(map.block, 'default')?.args, ['upgrade'], 'an Upgrade header turns into Connection: upgrade');
    for (const path of ['/bitrix/subws/', '/bitrix/sub/']) {
      const loc = locations(publicServer).get(path);
      assert.ok(loc, `location ${path}`);
      assert.equal(directive(loc, 'proxy_http_version')?.args[0], '1.1', `${path}: HTTP/1.1 to the upstream`);
      const headers = new Map(directives(loc, 'proxy_set_header').map((h) => [h.args[0]!.toLowerCase(), h.args[1]]));
      assert.equal(headers.get('upgrade'), '$http_upgrade', `${path}: Upgrade header`);
      assert.equal(headers.get('connection'), '$connection_upgrade', `${path}: Connection header`);
      assert.equal(directive(loc, 'proxy_buffering')?.args[0], 'off', `${path}: proxy_buffering off`);
      const readTimeout = nginxSeconds(directive(loc, 'proxy_read_timeout')?.args[0] ?? '60s');
      assert.ok(readTimeout >= 60, `${path}: proxy_read_timeout at least 60 s`);
      for (const cfg of configs.values()) {
        assert.ok(readTimeout * 1000 > cfg.gateway.longPollTimeoutMs, `${path}: read timeout above the long-poll hold`);
        assert.ok(readTimeout * 1000 > cfg.gateway.pingIntervalMs, `${path}: read timeout above the WebSocket ping interval`);
      }
    }
  });

  it('balances over every gateway and publisher, with keepalive and without stickiness', () => {
    const gatewayTargets = byRole('gateway').map((n) => `${n}:${listenerPort(configs.get(n)!, 'sub')}`).sort();
    const publisherTargets = byRole('publisher').map((n) => `${n}:${listenerPort(configs.get(n)!, 'pub')}`).sort();
    for (const path of ['/bitrix/subws/', '/bitrix/sub/', '/bitrix/rest/']) {
      assert.deepEqual(members(upstreamOf(locations(publicServer).get(path))), gatewayTargets, `${path}: every gateway`);
    }
    for (const path of ['/bitrix/pub/', '/bitrix/api/', '/server-stat/']) {
      assert.deepEqual(members(upstreamOf(locations(internalServer).get(path))), publisherTargets, `${path}: every publisher`);
    }
    for (const [name, u] of upstreams) {
      assert.ok(directive(u, 'keepalive'), `upstream ${name}: keepalive connections`);
      for (const sticky of ['ip_hash', 'hash', 'sticky']) assert.equal(directive(u, sticky), undefined, `upstream ${name}: no ${sticky}, jetpull needs no sticky sessions`);
    }
    for (const server of [publicServer, internalServer]) {
      for (const [path, loc] of locations(server)) {
        if (!directive(loc, 'proxy_pass')) continue;
        assert.equal(directive(loc, 'proxy_http_version')?.args[0], '1.1', `${path}: keepalive to the upstream needs HTTP/1.1`);
        assert.ok(directives(loc, 'proxy_set_header').some((h) => h.args[0]!.toLowerCase() === 'connection'), `${path}: sets Connection (a plain request must not send "close")`);
      }
    }
  });

  it("passes the client's address to the gateways, which believe it from nginx's network only", () => {
    for (const [path, loc] of locations(publicServer)) {
      if (!directive(loc, 'proxy_pass')) continue;
      const headers = new Map(directives(loc, 'proxy_set_header').map((h) => [h.args[0]!.toLowerCase(), h.args[1]]));
      assert.equal(headers.get('x-forwarded-for'), '$proxy_add_x_forwarded_for', `${path}: X-Forwarded-For with the client's address appended`);
      assert.equal(headers.get('x-real-ip'), '$remote_addr', `${path}: X-Real-IP`);
    }
    const req = (peer: string, xff: string): IncomingMessage => ({ socket: { remoteAddress: peer }, headers: { 'x-forwarded-for': xff } }) as unknown as IncomingMessage;
    for (const name of byRole('gateway')) {
      const addresses = new ClientAddress(configs.get(name)!.security.trustedProxies);
      // Addresses Docker gives compose networks by default (172.17-31.0.0/16, 192.168.0.0/16).
      for (const nginxAddress of ['172.18.0.5', '172.30.1.9', '192.168.48.3']) {
        assert.equal(addresses.of(req(nginxAddress, '203.0.113.5, 198.51.100.7')), '198.51.100.7', `${name}: the client nginx names, from nginx at ${nginxAddress}`);
      }
      assert.equal(addresses.of(req('198.51.100.9', '198.51.100.7')), '198.51.100.9', `${name}: a public peer's header is not believed`);
    }
  });

  it('answers its healthcheck from a location that returns 200', () => {
    const argv = healthcheckArgv(svc, 'nginx');
    const found = /https?:\/\/[^\s'"]+/.exec(argv.join(' '));
    assert.ok(found, `the nginx healthcheck asks an HTTP URL (${argv.join(' ')})`);
    const url = new URL(found[0]);
    const port = Number(url.port || 80);
    const server = servers.find((s) => s.ports.includes(port));
    assert.ok(server, `a server on port ${port}`);
    const loc = locations(server).get(`= ${url.pathname}`);
    assert.equal(directive(loc, 'return')?.args[0], '200', `location = ${url.pathname} returns 200`);
  });
});
