import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * The physical ceiling: a bare `ws` server that does the least work a push server
 * must do per delivery. Every HTTP POST's body is wrapped once in a text-mode
 * envelope (`#!NGINXNMS!#{…,"text":<body>}#!NGINXNME!#`), framed once with ws's
 * Sender.frame, and the same buffers are written to every connected socket (corked),
 * then the POST is answered 200. WebSocket upgrades are accepted on any path.
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

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: true });
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
    const text = Buffer.concat([
      Buffer.from(`#!NGINXNMS!#{"id":${counter},"mid":"${mid}","channel":"-","tag":"000","time":"${new Date().toUTCString()}","text":`),
      ...chunks,
      Buffer.from('}#!NGINXNME!#'),
    ]);
    const parts = Sender.frame(text, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false });
    for (const ws of wss.clients) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      const socket = (ws as unknown as { _socket: Socket })._socket;
      socket.cork();
      for (const p of parts) socket.write(p);
      socket.uncork();
      writes++;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 0 });
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => undefined);
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
