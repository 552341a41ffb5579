import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { callbackEnd, turns, type EndListener } from '../src/gateway/turn.ts';

/**
 * The physical ceiling: a bare `ws` server that does the least work a push server
 * must do per delivery, and frames the way jetpull does by default. Every HTTP
 * POST's body is wrapped once in a text-mode envelope
 * (`#!NGINXNMS!#{…,"text":<body>}#!NGINXNME!#`) and handed to every connected
 * socket, then the POST is answered 200. A socket with nothing queued gets it at
 * once (when the request's callback ends) as its own frame; messages that arrive
 * while its previous write has not drained, or later in the same event-loop turn,
 * are gathered and written together as one frame at the end of the turn, at most
 * CEILING_MAX_BYTES bytes and CEILING_MAX_MESSAGES messages (jetpull's
 * coalesceMaxBytes and coalesceMaxMessages). Frames are built once with ws's
 * Sender.frame and the same buffers go to every socket that gathered the same
 * messages (corked). WebSocket upgrades are accepted on any path.
 *
 * Started by the benchmark as a child process; prints {"port":N} on stdout and exits
 * when its stdin closes (so it never outlives the benchmark).
 */

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
// ws 8 internal API (node_modules/ws/lib/sender.js); not in @types/ws.
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;
if (typeof Sender?.frame !== 'function') throw new Error('ws Sender.frame is not available (ws 8 internal API)');
const TEXT: FrameOptions = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false };

const MAX_BYTES = Number(process.env.CEILING_MAX_BYTES ?? 65_536);
const MAX_MESSAGES = Number(process.env.CEILING_MAX_MESSAGES ?? 256);

/** One message: its envelope, framed once; runs of messages starting with it, framed once. */
class Message {
  private framed: Buffer[] | undefined;
  joined: { list: Message[]; parts: Buffer[] } | undefined;
  constructor(readonly text: Buffer) {}
  get parts(): Buffer[] {
    return (this.framed ??= Sender.frame(this.text, TEXT));
  }
}

function framesOf(list: Message[]): Buffer[] {
  const first = list[0]!;
  if (list.length === 1) return first.parts;
  const memo = first.joined;
  if (memo !== undefined && memo.list.length === list.length && memo.list.every((m, i) => m === list[i])) return memo.parts;
  const parts = Sender.frame(Buffer.concat(list.map((m) => m.text)), TEXT);
  if (memo === undefined) first.joined = { list: list.slice(), parts };
  return parts;
}

class Conn implements EndListener {
  private pending: Message[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private sentInTurn = 0;
  private waitsFor: 'callback' | 'turn' | undefined;
  constructor(private readonly socket: Socket) {}

  add(m: Message): void {
    if (this.pending.length > 0 && (this.pendingBytes + m.text.length > MAX_BYTES || this.pending.length + 1 > MAX_MESSAGES)) this.flush();
    const idle =
      this.pending.length === 0 && this.waitsFor === undefined && this.writing === 0 && this.socket.writableLength === 0 && this.sentInTurn !== turns.current();
    this.pending.push(m);
    this.pendingBytes += m.text.length;
    if (this.waitsFor !== undefined) return;
    this.waitsFor = idle ? 'callback' : 'turn';
    (idle ? callbackEnd : turns).defer(this);
  }

  ended(at: 'callback' | 'turn'): void {
    this.waitsFor = undefined;
    if (this.pending.length === 0) return;
    if (at === 'callback') {
      this.flush();
      this.sentInTurn = turns.current();
    } else if (this.writing === 0) {
      this.flush();
    }
  }

  private flush(): void {
    const parts = framesOf(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.socket.destroyed) return;
    this.socket.cork();
    for (let i = 0; i < parts.length - 1; i++) this.socket.write(parts[i]!);
    this.socket.write(parts.at(-1)!, this.written);
    this.socket.uncork();
    this.writing++;
    writes++;
  }

  private readonly written = (): void => {
    this.writing--;
    if (this.writing === 0 && this.pending.length > 0 && this.waitsFor === undefined) {
      this.waitsFor = 'turn';
      turns.defer(this);
    }
  };
}

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: true });
const conns = new Map<WebSocket, Conn>();
const epoch = Math.floor(Date.now() / 1000);
let counter = 0;
let writes = 0;

const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(req.url === '/stats' ? 200 : 404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ clients: wss.clients.size, messages: counter, writes }));
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    counter++;
    const mid = `${epoch}${String(counter).padStart(16, '0')}`;
    const m = new Message(
      Buffer.concat([
        Buffer.from(`#!NGINXNMS!#{"id":${counter},"mid":"${mid}","channel":"-","tag":"000","time":"${new Date().toUTCString()}","text":`),
        ...chunks,
        Buffer.from('}#!NGINXNME!#'),
      ]),
    );
    for (const [ws, conn] of conns) if (ws.readyState === WebSocket.OPEN) conn.add(m);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 0 });
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => undefined);
    conns.set(ws, new Conn((ws as unknown as { _socket: Socket })._socket));
    ws.once('close', () => conns.delete(ws));
  });
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 }, () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
