export { startOfficialClient, type OfficialClient } from './client.ts';
export { buildPullConfig, type Transport } from './config.ts';
export type { OfficialClientOptions } from './session.ts';
export type { DecodedWireMessage } from './wire.ts';
