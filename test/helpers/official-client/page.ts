/**
 * Where the fake browser's page lives: another origin than the push server, as on a
 * portal, so the long poll is subject to CORS and the WebSocket upgrade carries a
 * foreign `Origin`.
 */
export const PAGE_URL = 'http://portal.test/';
export const PAGE_ORIGIN = new URL(PAGE_URL).origin;
