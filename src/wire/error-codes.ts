/**
 * Push server 2.0 error codes (spec §3.8). A WebSocket is closed with the code and
 * "<code>: <reason>"; an HTTP reply carries the same text with the status below.
 */
export const PushError = {
  WrongChannelId: 4010,
  CannotGetLastMessages: 4011,
  PublicChannelRequired: 4012,
  WrongRequestData: 4013,
  CommandNotAllowed: 4014,
  WrongRequestCommand: 4015,
  TooManyMessages: 4016,
  NoChannels: 4017,
  TooManyChannels: 4018,
  InvalidChannelId: 4019,
  PrivateChannelNotAllowed: 4020,
  InvalidSignature: 4021,
  TooManyConnections: 4029,
} as const;
export type PushErrorCode = (typeof PushError)[keyof typeof PushError];

const REASONS: Record<PushErrorCode, string> = {
  4010: 'Wrong Channel Id.',
  4011: "Couldn't get last messages.",
  4012: 'Public Channel Id is Required.',
  4013: 'Wrong Request Data.',
  4014: 'Request command is not allowed.',
  4015: 'Wrong Request Command.',
  4016: 'Request exceeded the maximum number of messages.',
  4017: 'No channels found.',
  4018: 'Request exceeded the maximum number of channels.',
  4019: 'Request has an invalid channel id.',
  4020: 'Private channel is not allowed.',
  4021: 'Channel has an invalid signature.',
  4029: 'Too many connections',
};

export function reasonOf(code: PushErrorCode): string {
  return REASONS[code];
}

/** "<code>: <reason>", the body of an error reply and the reason of a close frame. */
export function errorText(code: PushErrorCode): string {
  return `${code}: ${REASONS[code]}`;
}

/** HTTP status for a code, as the reference maps it: 4029 → 429, every other → 400. */
export function httpStatusOf(code: PushErrorCode): number {
  return code === PushError.TooManyConnections ? 429 : 400;
}

/**
 * Close codes of jetpull's own (not in Push server 2.0). The official client treats
 * any code but 4010 as "reconnect in about half a second with mid", which is
 * exactly what these situations want.
 */
export const JetpullClose = {
  /** The connection's outbox exceeded gateway.maxOutboxBytes. */
  SlowClient: 4008,
  /** The server is shutting down or draining; reconnect elsewhere. */
  ServiceRestart: 1012,
  /** Frame larger than limits.maxPayloadBytes (set by ws itself). */
  MessageTooBig: 1009,
} as const;
