import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.ts';

/**
 * Request bodies within limits.maxPayloadBytes, on every route of every listener.
 * A body over the limit is answered 413 and its connection is closed. Node parses
 * (and would hand us) requests pipelined behind that body before the socket is gone,
 * so the connection is marked the moment the limit is passed, synchronously in the
 * parser's callbacks, and nothing that arrives on it afterwards is handled.
 */
const refused = new WeakSet<Socket>();

/** How long a refused connection is still read (and what arrives discarded) after its answer went out. */
const LINGER_MS = 5_000;

/** True for a request that came on a connection whose earlier body was refused: leave it unanswered. */
export function onRefusedConnection(req: IncomingMessage): boolean {
  return refused.has(req.socket);
}

/** Marks the request's connection: whatever arrives on it from now on is not handled. */
export function refuseConnection(req: IncomingMessage): void {
  refused.add(req.socket);
}

/**
 * Marks the connection refused and ends it once `res` is written, without losing the
 * answer. Destroying a socket that has unread input makes the kernel send a reset, and
 * a client that had not read the answer yet loses it (seen under load: neither the 413
 * nor an earlier answer arrived). So the write side is closed (FIN) and what the client
 * still sends is read and discarded until it closes too, or LINGER_MS pass.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  refuseConnection(req);
  // Node answers `Connection: close` with destroySoon(), a destroy right after the write: end instead.
  socket.destroySoon = () => socket.end();
  res.once('finish', () => {
    socket.end();
    if (socket.readableEnded) {
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
  });
}

/** Whether the request carries a body at all (most GETs do not, and skip the read). */
export function hasBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) !== 0;
}

export class BodyTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a request body of at most `limitBytes`. A declared Content-Length over the
 * limit is refused before reading; a body that grows past it stops being read.
 * Either way the connection is marked refused before this returns to the parser.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): void => {
      refuseConnection(req);
      reject(new BodyTooLargeError(limitBytes));
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limitBytes) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limitBytes) {
        failed = true;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

/** Reads the body within `limitBytes`, then `next(body)`; over it: 413, and the connection is closed. */
export async function withBody(
  req: IncomingMessage,
  res: ServerResponse,
  limitBytes: number,
  log: Logger,
  next: (body: Buffer) => void | Promise<void>,
): Promise<void> {
  let body: Buffer;
  try {
    body = await readBody(req, limitBytes);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) throw err;
    log.info({ limitBytes, method: req.method }, 'request body too large');
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    closeAfterAnswer(req, res);
    res.writeHead(413, { 'Content-Type': 'text/plain', 'Access-Control-Allow-Origin': '*', 'Content-Length': 0, Connection: 'close' });
    res.end();
    return;
  }
  await next(body);
}
