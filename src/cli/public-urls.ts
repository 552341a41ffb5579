import { DEFAULT_ROUTES, type Config, type RouteName } from '../config/schema.ts';

/**
 * The URLs browsers and apps use, on a host that routes the public paths to jetpull
 * (nginx, or jetpull's own listener): `http://` and `https://` forms of each.
 */
export interface PublicUrls {
  longPolling: [string, string];
  websocket: [string, string];
  publishWeb: [string, string];
}

/** Long polling through nginx arrives as /bitrix/sub/, which jetpull serves next to the default sub route. */
const LONG_POLL_ALIAS = '/bitrix/sub/';

export function publicUrls(config: Config, host: string): PublicUrls {
  const sub = routePath(config, 'sub');
  const longPoll = sub === DEFAULT_ROUTES.sub ? LONG_POLL_ALIAS : sub;
  const rest = routePath(config, 'rest');
  return {
    longPolling: [`http://${host}${longPoll}`, `https://${host}${longPoll}`],
    websocket: [`ws://${host}${sub}`, `wss://${host}${sub}`],
    publishWeb: [`http://${host}${rest}`, `https://${host}${rest}`],
  };
}

/** The configured path of a route (the first listener that serves it), else the default. */
export function routePath(config: Config, route: RouteName): string {
  return config.servers.find((s) => s.routes[route] !== undefined)?.routes[route] ?? DEFAULT_ROUTES[route];
}

/** `host` or `host:port`, without a scheme or a path. */
export function isHostPort(text: string): boolean {
  return /^(#DOMAIN#|[A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\])(:\d{1,5})?$/.test(text);
}
