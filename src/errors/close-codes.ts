/**
 * Every code jetpull ends a connection or refuses a request with. A WebSocket is
 * closed with the code and its reason; a long poll answers `longPollStatus` with the
 * same reason as its body ("resume": a 304 carrying the client's resume point, so it
 * polls again at once). The 4010–4029 codes and texts are Push server 2.0's (spec
 * §3.8; 4026 from its cloud variant); the others are standard WebSocket codes or
 * jetpull's own.
 *
 * What the official client does (official-client.md §6–7): after an open WebSocket
 * closes with any code but 4010 it reconnects in about 0.5 s with its mid; on 4010 it
 * re-fetches its config and reconnects after 6–35 s. A long poll answered 304 polls
 * again at once; any other status backs off 15 s or more.
 */
export const CloseCode = {
  /** Never sent: the socket is dropped without a close frame (missed pong, handshake aborted). */
  AbnormalClosure: 1006,
  /** A client frame over limits.maxPayloadBytes (sent by the ws library itself). */
  MessageTooBig: 1009,
  /** A request failed for a reason that is ours, not the client's. */
  InternalError: 1011,
  /** The server drains or stops: reconnect (elsewhere) and resume by mid. */
  ServiceRestart: 1012,
  /** Come back at once: a replay continues from the new mid, or storage was busy. */
  TryAgainLater: 1013,
  /** The connection's outbox exceeded gateway.maxOutboxBytes. */
  SlowClient: 4008,
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
  /** security.signedPublishing: a trusted request without a valid `signature` (Push server 2.0 cloud mode). */
  WrongRequestSignature: 4026,
  TooManyConnections: 4029,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** The protocol's own error codes (spec §3.8): request refusals, "<code>: <reason>" on the wire. */
export type PushCode = Exclude<CloseCode, 1006 | 1009 | 1011 | 1012 | 1013 | 4008>;

interface CloseCodeInfo {
  /** Reason of the close frame, and body of a long poll's error reply. */
  readonly reason: string;
  /** Status a long poll (or another HTTP route) answers with, or `resume` for a 304 with the client's mid. */
  readonly longPollStatus: number | 'resume';
}

const reason = (code: PushCode, text: string): CloseCodeInfo => ({ reason: `${code}: ${text}`, longPollStatus: code === 4029 ? 429 : 400 });

export const CLOSE_CODES: Readonly<Record<CloseCode, CloseCodeInfo>> = {
  1006: { reason: '', longPollStatus: 'resume' },
  1009: { reason: 'Message too big.', longPollStatus: 413 },
  1011: { reason: 'Internal error.', longPollStatus: 500 },
  1012: { reason: 'Server restarting.', longPollStatus: 'resume' },
  1013: { reason: 'Try again later.', longPollStatus: 503 },
  4008: { reason: '4008: Slow client.', longPollStatus: 'resume' },
  4010: reason(4010, 'Wrong Channel Id.'),
  4011: reason(4011, "Couldn't get last messages."),
  4012: reason(4012, 'Public Channel Id is Required.'),
  4013: reason(4013, 'Wrong Request Data.'),
  4014: reason(4014, 'Request command is not allowed.'),
  4015: reason(4015, 'Wrong Request Command.'),
  4016: reason(4016, 'Request exceeded the maximum number of messages.'),
  4017: reason(4017, 'No channels found.'),
  4018: reason(4018, 'Request exceeded the maximum number of channels.'),
  4019: reason(4019, 'Request has an invalid channel id.'),
  4020: reason(4020, 'Private channel is not allowed.'),
  4021: reason(4021, 'Channel has an invalid signature.'),
  4026: reason(4026, 'Wrong request signature.'),
  4029: reason(4029, 'Too many connections'),
};

/** "<code>: <reason>" for the protocol's codes, the reason alone for the others. */
export function closeText(code: CloseCode): string {
  return CLOSE_CODES[code].reason;
}

/** The reason alone, without the "<code>: " prefix (a refused WebSocket handshake's body, spec §2.4). */
export function bareReason(code: PushCode): string {
  return CLOSE_CODES[code].reason.slice(6);
}

export function longPollStatus(code: CloseCode): number | 'resume' {
  return CLOSE_CODES[code].longPollStatus;
}
