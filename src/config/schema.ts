import { hostname } from 'node:os';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';

/**
 * The one runtime configuration schema: names, defaults, units and descriptions.
 * Environment variables and the Push server 2.0 config file are mapped onto this
 * shape by `load.ts`; nothing else reads configuration.
 */

/**
 * A number, or a string that spells one (environment values). Not z.coerce.number(),
 * which reads a blank string or null as 0, true as 1 and [5] as 5: a port left blank
 * would listen on a random port, `"maxPayloadBytes": true` would allow one byte.
 */
const numeric = (schema: z.ZodNumber) => z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), schema);
const int = () => z.number().int();

const port = numeric(int().min(0).max(65_535));
const positiveInt = numeric(int().positive());

export const ROUTE_NAMES = ['sub', 'pub', 'rest', 'stat', 'api'] as const;
export type RouteName = (typeof ROUTE_NAMES)[number];

export const DEFAULT_ROUTES = {
  sub: '/bitrix/subws/',
  pub: '/bitrix/pub/',
  rest: '/bitrix/rest/',
  stat: '/server-stat/',
  api: '/bitrix/api/',
} as const satisfies Record<RouteName, string>;

const routePath = z.string().startsWith('/', 'a route is an absolute path such as /bitrix/subws/');

const Routes = z
  .strictObject({
    sub: routePath.optional().describe('Subscriptions: WebSocket and long polling (GET), CORS pre-flight (OPTIONS).'),
    pub: routePath.optional().describe('Trusted backend publishing (POST) and channel online status (GET). Keep it off public networks.'),
    rest: routePath.optional().describe('Untrusted client requests in protobuf (POST).'),
    stat: routePath.optional().describe('Trusted server statistics (GET).'),
    api: routePath.optional().describe('Trusted JSON-RPC of protocol 5 portals (POST, signed): publish to users and channels, users\' last seen. Keep it off public networks.'),
  })
  .describe('Routes served by this listener; a route left out is not served here.');

const Ssl = z.strictObject({
  key: z.string().min(1).describe('Path to the PEM private key.'),
  cert: z.string().min(1).describe('Path to the PEM certificate chain.'),
  ca: z.string().optional().describe('Path to extra PEM CA certificates.'),
  ciphers: z.string().optional(),
  dhparam: z.string().optional().describe('Path to a PEM Diffie-Hellman parameter file.'),
  honorCipherOrder: z.boolean().optional(),
});

export const ListenerSchema = z.strictObject({
  name: z.string().optional().describe('Label used in logs.'),
  port: port.describe('TCP port; 0 picks a free one.'),
  hostname: z.string().default('127.0.0.1').describe('Bind address.'),
  backlog: positiveInt.default(1024).describe('Listen backlog (connections).'),
  routes: Routes.prefault(DEFAULT_ROUTES),
  ssl: Ssl.optional().describe('Serve HTTPS/WSS with these files instead of plain HTTP.'),
});
export type ListenerConfig = z.infer<typeof ListenerSchema>;

const Nats = z.strictObject({
  url: z
    .string()
    .min(1)
    .optional()
    .describe('NATS server URL(s), comma separated. Unset: start nats-server from PATH as a child process.'),
  name: z.string().default('jetpull').describe('Connection name shown in NATS monitoring.'),
  user: z.string().optional().describe('NATS user (deploy/nats/auth.conf: gateway, publisher, or jetpull for role all).'),
  password: z.string().optional().describe('Password of user.'),
  passwordFile: z.string().min(1).optional().describe('Path to a file holding the password of user (a trailing newline is ignored), read at start-up: container secrets, such as the ones compose generates. Not together with password.'),
  token: z.string().optional(),
  credsFile: z.string().optional().describe('Path to a NATS .creds file.'),
  connectTimeoutMs: positiveInt.default(5_000).describe('Time allowed for the first connection before start-up fails.'),
  requestTimeoutMs: positiveInt.default(5_000).describe('Time allowed for one JetStream API request (stream info, direct get).'),
  localDataDir: z.string().optional().describe('Store directory of the child nats-server started when url is unset. Default: data/nats, or data/nats-<port> when the first listener is not on 8010, so instances side by side keep apart.'),
  localPort: numeric(int().min(-1).max(65_535)).default(4222).describe('Client port of the child nats-server (on 127.0.0.1); when taken, a free port is used and logged. -1: always a free port.'),
  localBinary: z.string().default('nats-server').describe('Executable started when url is unset.'),
});

/** A list in a config file, or comma separated in an environment variable. */
const commaList = <T extends z.ZodType>(item: T) =>
  z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v), z.array(item));

const origin = z
  .string()
  .regex(/^https?:\/\/(\*\.)?[a-z0-9.-]+(:[0-9]{1,5})?$/i, 'an origin is scheme://host[:port], such as https://portal.example.com or https://*.example.com');

const proxyAddress = z.string().refine(
  (v) => {
    try {
      proxyaddr.compile(v);
      return true;
    } catch {
      return false;
    }
  },
  'a proxy is an address (10.1.2.3, ::1), a CIDR range (172.16.0.0/12) or one of loopback, linklocal, uniquelocal',
);

const Security = z.strictObject({
  key: z.string().min(1).optional().describe('HMAC key shared with the portal (pull module "signature_key"); it signs and verifies. Unset: unsigned private ids are accepted, so anyone who knows a channel id can subscribe to it, and public ids are unusable; a warning is logged at start and shown in /server-stat/.'),
  previousKeys: commaList(z.string().min(1)).optional().describe('Keys the portal used before (comma separated here, a JSON array in a config file): signatures made with them are still accepted, so changing "signature_key" does not disconnect every client. Drop a key once the channels it signed have expired (12 h after the change). Needs key.'),
  algo: z.string().default('sha1').describe('HMAC hash (pull module "signature_algo").'),
  signedPublishing: z
    .enum(['off', 'required'])
    .default('off')
    .describe('required: every request to the pub route (POST text and binaryMode publishes, GET channel stats) must carry ?signature=<hex HMAC of the raw body with key>, for GET of the CHANNEL_ID value, as Push server 2.0\'s cloud mode; without it or with a wrong one 400 "4026: Wrong request signature.". Needs key. off: not checked, as Push server 2.0 personal mode (the pull module signs only in its shared mode). /server-stat/ is never signed.'),
  allowedOrigins: commaList(origin)
    .default([])
    .describe('Browser origins (https://portal.example.com, https://*.example.com) whose pages may subscribe and send client requests; another Origin gets 403 (the official client backs off 15 s and more). Requests without an Origin (same-origin pages, desktop and mobile apps) are allowed. Empty: every origin.'),
  trustedProxies: commaList(proxyAddress)
    .default([])
    .describe('Reverse proxies whose X-Forwarded-For (read from the right, past every trusted proxy) or, without it, X-Real-IP names the client: addresses, CIDR ranges, or loopback, linklocal, uniquelocal (the private ranges). Limits per address count that client instead of the proxy. Empty: the TCP peer is the client, so behind a proxy every client shares its address. List only proxies every request passes through: a client that can reach jetpull from a trusted address can claim any address.'),
});

const Storage = z.strictObject({
  messageTtlSec: positiveInt.default(86_400).describe('Longest time a message is kept for replay; publish expiries are capped to it.'),
  liveOnlyTtlSec: positiveInt.default(300).describe('On nats-server 2.11+ (per-message TTL): how long a live-only message (no expiry) stays in the stream, long enough for gateways to catch up after a reconnect; it is never replayed. Older servers keep it for messageTtlSec.'),
  channelTtlSec: positiveInt.default(86_400).describe('Accepted for Push server 2.0 compatibility; per-channel history lives as long as its messages.'),
  onlineTtlSec: positiveInt.default(120).describe('Presence lifetime after the last sign of a connection.'),
  onlineDeltaSec: numeric(int().min(0)).default(10).describe('Slack added to onlineTtlSec.'),
  presenceWritesInFlight: positiveInt.default(64).describe('Presence writes (KV puts) one process has outstanding at once; the rest wait in a queue of one entry per channel, so the pongs of a ping round cannot flood NATS. A long queue makes presence late, never wrong for longer than it.'),
  streamReplicas: numeric(int().min(1).max(5)).default(1).describe('Replicas of every stream and bucket: 1 for one NATS server, 3 for a cluster.'),
  streamMaxBytes: numeric(int()).default(-1).describe('Upper bound of the message stream on disk (bytes); the oldest messages go first. -1: unbounded.'),
  duplicateWindowMs: positiveInt.default(120_000).describe('Window in which a retried publish with the same id is stored once.'),
});

const Limits = z.strictObject({
  maxPayloadBytes: positiveInt.default(1_048_576).describe('Largest HTTP body (413) or WebSocket frame (close 1009) accepted.'),
  maxConnPerChannel: positiveInt.default(100).describe('Connections per channel with a public id; the oldest is closed with 4029.'),
  maxMessagesPerRequest: positiveInt.default(100).describe('Messages in one protobuf request (4016), or in one batch on the NATS publish subject (more: the batch is refused whole as a bad request, nothing of it stored).'),
  maxChannelsPerRequest: positiveInt.default(100).describe('Receivers of one message, or channels of one stats request (4018).'),
  maxRpcReceivers: positiveInt.default(10_000).describe('Receivers (userList plus channelList) of one publish a protocol 5 portal sends to /bitrix/api/, and users of one getUsersLastSeen. The pull module does not split a message to many users as it does for version 4 (nginx_command_per_hit), so this is above maxChannelsPerRequest; more answers that request -32602 and stores nothing of it. Each receiver is one stored copy.'),
  maxClientMessageBytes: positiveInt.default(65_536).describe('Largest body of one message a client publishes (binary WebSocket, /bitrix/rest/); a larger one refuses the request with 4013. The backend\'s /bitrix/pub/ is bounded by maxPayloadBytes only.'),
  maxClientCopiesPerRequest: positiveInt.default(100).describe('Copies one client request may store: its messages\' receivers added up (each receiver is one stored copy); more refuses the request with 4018. Without it one frame could store maxMessagesPerRequest × maxChannelsPerRequest copies.'),
  clientRequestsPerSec: positiveInt.default(50).describe('Untrusted requests (binary WebSocket frames, protocol 5 method calls, POST /bitrix/rest/) one public id may make per second on one process (a protocol 5 connection without a public id: its client address), with clientRequestBurst saved up. Over it a WebSocket is read more slowly (nothing refused or closed), a POST is answered 429 with Retry-After.'),
  clientRequestBurst: positiveInt.default(200).describe('Requests a public id may make at once before clientRequestsPerSec applies.'),
  restRequestsPerIpPerSec: numeric(int().min(0)).default(0).describe('POST /bitrix/rest/ requests one client address may make per second on one process (burst the same), checked before the CHANNEL_ID; over it 429 with Retry-After. 0: not limited. The address is the one security.trustedProxies name (as for the connection limits): behind a proxy not listed there every client shares the proxy\'s address.'),
  maxClientExpirySec: numeric(int().min(0)).default(600).describe('Longest expiry (seconds) a client publish may ask for; a longer one is cut to it, 0 makes every client message live only. Bounds how long client messages take stream space.'),
});

const Gateway = z.strictObject({
  longPollTimeoutMs: positiveInt.default(40_000).describe('How long a long poll is held before 304.'),
  coalesceWindowMs: numeric(int().min(0)).default(0).describe('0: a WebSocket message to a connection with nothing queued is written at once; messages that arrive while its previous write has not drained, or later in the same event-loop turn, go out together as one frame. Above 0: Push server 2.0\'s fixed window (400 there): after a frame, further messages within this window wait and go together when it ends, so a message that follows another waits up to the window.'),
  coalesceMaxBytes: positiveInt.default(65_536).describe('Largest frame coalescing builds; once a frame is this full it is written at once (a single larger message goes alone). More: fewer frames for a connection that falls behind, and longer for a browser to handle one.'),
  coalesceMaxMessages: positiveInt.default(256).describe('Most messages coalescing puts into one frame; 1 writes every message as its own frame (each costs the server and the client a frame, a few microseconds of CPU each). More: fewer frames when a connection falls behind; a browser handles a frame\'s messages in one task.'),
  pingIntervalMs: positiveInt.default(120_000).describe('WebSocket ping interval; a connection that has not answered the previous ping is terminated.'),
  userStatusPollMs: positiveInt.default(5_000).describe('Protocol 5 status pushes (subscribeStatusChange): how often a gateway reads the presence of the users its connections watch. A change reaches the watcher within this plus the presence TTL for going offline (storage.onlineTtlSec + onlineDeltaSec); one KV read per watched user per interval.'),
  jsonRpcPingIntervalMs: numeric(int().min(1_000).max(15_000)).default(10_000).describe('Protocol 5 (jsonRpc=true) WebSockets: interval of the text `ping` the client answers with `pong`. The official client closes (3005) and reconnects when no ping came for 20 s after one, so at most 15 000; shorter costs a frame per connection per interval.'),
  maxOutboxBytes: positiveInt.default(4 * 1_048_576).describe('Bytes queued for one connection (unsent plus socket buffer); beyond it the connection is closed (4008) so a reader that stalls cannot hold memory.'),
  maxClientRequestsInFlight: positiveInt.default(8).describe('Binary requests of one WebSocket (client publishing, channel stats) handled at once; while that many are in hand the server stops reading that socket, so one client cannot fill the publisher for everyone.'),
  maxChannelsPerConnection: positiveInt.default(100).describe('Channel tokens in one CHANNEL_ID; more is answered with 4010.'),
  replayPageMessages: positiveInt.default(1_000).describe('Messages read per replay step; a long poll answers one page and continues from its new mid.'),
  liveSubscription: z
    .enum(['channel', 'all'])
    .default('channel')
    .describe(
      "How a gateway receives live messages. 'channel': one NATS subscription per channel it holds (about 1.5 KB in the gateway and 0.5-0.9 KB in nats-server each; only those channels' messages arrive). 'all': one subscription to every channel's messages, those of channels it does not hold dropped on arrival (saves that memory per connection; each gateway then receives the whole message stream: for one gateway, or gateways that each hold most online users).",
    ),
  replayWindowBytes: positiveInt
    .default(64 * 1_048_576)
    .describe(
      'Bytes of stream messages a gateway keeps from the scans of a reconnect wave, so clients arriving during or after a scan are served from it (plus a short read of what came since) instead of a scan each; let go 10 s after the wave, the oldest dropped beyond it. Smaller: in a wave wider than this, clients with older mids are read one by one (slower).',
    ),
  recentMessagesBytes: numeric(int().min(0))
    .default(32 * 1_048_576)
    .describe(
      'Bytes of recent replayable messages a gateway keeps in memory for the channels it holds (also while they linger after their last connection left), so a client that comes back within that time (a dropped connection, a reconnect wave after a network blip or a proxy reload) is replayed from memory instead of from the stream. Beyond it the channel written to least recently loses its history, and its replays read the stream. 0: none kept.',
    ),
  recentMessagesPerChannel: numeric(int().min(0))
    .default(100)
    .describe('Recent messages kept per channel for replays from memory (see recentMessagesBytes); a client that missed more reads the stream.'),
  maxConcurrentReplays: positiveInt.default(64).describe('Replays read from JetStream at once per gateway; further ones wait their turn.'),
  maxQueuedReplays: positiveInt.default(20_000).describe('Replays waiting for a slot; beyond it new connections with a mid are refused with 503 so a reconnect storm cannot starve live delivery.'),
  maxNewConnectionsPerSec: positiveInt.default(5_000).describe('New connections (WebSocket upgrades and long polls) a gateway accepts per second, with a burst of the same size; beyond it 503.'),
  repollGraceMs: numeric(int().min(0)).default(10_000).describe('A long poll that comes back to the same gateway within this time after its answer, for the same channels and with the mid that answer gave it, is not counted against maxNewConnectionsPerSec or maxNewConnectionsPerIpPerSec (one such poll per answer; the replay-queue bound still applies). So one broadcast answering many held polls does not get their next polls refused. 0: every poll is counted.'),
  maxConnections: positiveInt.default(100_000).describe('Open connections (WebSockets and held long polls) one process holds; beyond it new ones get 503 (behind nginx: tried on another gateway). About 10 KiB each when idle; keep it below the open-file limit (ulimit -n), which every connection also counts against.'),
  maxConnectionsPerIp: positiveInt.default(1_000).describe('Open connections (WebSockets and held long polls) from one client address (IPv6: one /64) on one process; beyond it new ones from that address get 429, those it holds stay. 1,000 because an office or a mobile carrier puts many users behind one NAT address; it stops one host from taking every connection, not a busy office. Behind a proxy it needs security.trustedProxies.'),
  maxNewConnectionsPerIpPerSec: positiveInt.default(200).describe('New connections (WebSocket upgrades and long polls; a long poll coming back after its answer is not counted) one client address may open per second on one process once newConnectionsPerIpBurst is spent; beyond it 429. Checked before maxNewConnectionsPerSec, so one address cannot spend everybody\'s rate.'),
  newConnectionsPerIpBurst: positiveInt.default(1_000).describe('New connections one client address may open at once before maxNewConnectionsPerIpPerSec applies: a whole office behind one NAT reconnecting after a restart (official clients come back within a second).'),
  maxOutboundBytes: positiveInt.default(1_073_741_824).describe('Bytes queued for all WebSockets of one process together (unsent plus socket buffers; a frame shared by many connections counts for each, so the real memory is at most this). Beyond it the connections with the largest queues are closed as slow (4008) until the rest fit; they reconnect with their mid and lose nothing. Guards the process against many slow readers at once, each under maxOutboxBytes.'),
  memoryWatermarkBytes: numeric(int().min(0)).default(0).describe('Resident memory (RSS) of the process above which /readyz fails and new connections get 503, until it is back below 90 % of it; the connections held keep working. Each crossing is logged once. 0: 85 % of the memory the process may use (the container\'s memory limit, else the machine\'s RAM), divided among the workers.'),
  maxCatchUpHeldMessages: positiveInt.default(100_000).describe('Live messages held while a catch-up reads the stream after a NATS reconnect or a stream leader change; past it the held ones are dropped and read from the stream instead (a slower catch-up, nothing lost).'),
  drainWindowMs: positiveInt.default(10_000).describe('On SIGTERM, connections are closed (1012) in batches spread over this window, so clients reconnect elsewhere without a herd.'),
});

const Publisher = z.strictObject({
  mailboxCapacity: positiveInt.default(10_000).describe('Publish commands waiting for a write slot; beyond it publishes are answered 503.'),
  maxInFlight: positiveInt.default(1_024).describe('JetStream writes awaiting acknowledgement at once.'),
  clientMailboxCapacity: positiveInt
    .default(1_000)
    .describe(
      "Client publishes (binary WebSocket frames, POST /bitrix/rest/) waiting for a write slot of the client lane, which is apart from the portal's (mailboxCapacity, maxInFlight); beyond it the client's request fails as temporary: 503 on /bitrix/rest/, close 1013 on a WebSocket (the official client reconnects at once). Browsers can fill only this lane: the portal's publishes never wait behind theirs or are refused for them.",
    ),
  clientMaxInFlight: positiveInt
    .default(128)
    .describe("JetStream writes of client publishes awaiting acknowledgement at once; the portal's writes have their own maxInFlight beside these, so at most this many client writes are ahead of a portal write on its way to JetStream."),
  publishTimeoutMs: positiveInt.default(10_000).describe('Time from a publish request to its acknowledgement (queueing and retries included); past it the answer is 503. Long enough to ride out a stream leader election (4–9 s).'),
  natsSubject: z.string().min(1).default('push.publish').describe('Request/reply subject of the native NATS publish API.'),
  atomicBatchMaxReceivers: numeric(int().min(0))
    .default(1_000)
    .describe(
      'Receivers of one publish written as one atomic batch on nats-server 2.12+ with storage.streamReplicas above 1: every copy stored or none, one acknowledgement. A publish to more receivers, or to a single-replica stream, is written one copy at a time. Keep it at or below the server\'s jetstream.limits.batch.max_msgs (default 1000). 0: always one copy at a time.',
    ),
});

export const ConfigSchema = z.strictObject({
  processUniqueId: z.string().min(1).default(`${hostname()}-${process.pid}`).describe('Name of this process in stats and logs.'),
  role: z.enum(['all', 'gateway', 'publisher']).default('all').describe('gateway: client connections; publisher: backend routes and the NATS publish subject; all: both.'),
  servers: z.array(ListenerSchema).min(1).default([{ port: 8010, hostname: '127.0.0.1', backlog: 1024, routes: { ...DEFAULT_ROUTES } }]),
  nats: Nats.prefault({}),
  security: Security.prefault({}),
  storage: Storage.prefault({}),
  limits: Limits.prefault({}),
  gateway: Gateway.prefault({}),
  publisher: Publisher.prefault({}),
  admin: z
    .strictObject({
      port: numeric(int().min(-1).max(65_535)).optional().describe('Port of the internal listener for /healthz, /readyz and /metrics; -1 turns it off, 0 picks a free one. Default: the first listener\'s port + 1170 (9180 for 8010), so instances side by side get their own. With several workers, worker n listens on port + n.'),
      hostname: z.string().default('127.0.0.1').describe('Bind address of the internal listener.'),
      // A JSON config file gives a boolean, the environment a string.
      demo: z
        .union([z.boolean(), z.stringbool()])
        .default(false)
        .describe('Serve a demo page at /demo on the internal listener: the official pull client subscribed to a demo user, and a form that publishes to it. Anyone who can reach the internal listener can then publish to the demo channels; npm start turns it on.'),
    })
    .prefault({}),
  workers: positiveInt.default(1).describe('Processes started by one jetpull command, sharing the listening ports (node:cluster); each is a full jetpull process.'),
  log: z
    .strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Lowest level written to stdout.') })
    .prefault({}),
});

type Parsed = z.infer<typeof ConfigSchema>;
/** The configuration with the defaults that depend on other settings filled in (config/load.ts). */
export type Config = Parsed & {
  readonly admin: Parsed['admin'] & { readonly port: number };
  readonly nats: Parsed['nats'] & { readonly localDataDir: string };
};

/** The admin port is the first listener's port plus this (8010 → 9180). */
export const ADMIN_PORT_OFFSET = 1170;
export type ConfigInput = z.input<typeof ConfigSchema>;
