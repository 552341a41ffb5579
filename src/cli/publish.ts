import { createPublisher, InvalidPublishError, PublishFailedError, PublishRefusedError, type PullMessage } from '../client/index.ts';
import { intOption, parseCommand } from './args.ts';
import type { Command } from './command.ts';
import { commandConfig, natsOf, routeUrl, signatureOf } from './context.ts';
import { CliError, ExitCode, UsageError } from './errors.ts';
import type { CliIo } from './io.ts';

const help = `Usage: jetpull publish --channel <id> [--channel <id>]... --body <json> [options]

Publishes one message with the publisher library (jetpull/client) and returns once it
is stored for every channel. Temporary failures are retried with the same idempotency
key, so the message is stored once; refusals are not retried.

Options:
  --channel <id>          a private id, <id>.<sig>, or a signed <priv>:<pub>.<sig> token; repeat for more
  --body <json>           the message, e.g. '{"module_id":"im","command":"message","params":{}}';
                          "-" reads it from standard input
  --raw                   send a body that is not such an object exactly as given
  --expiry <seconds>      how long it stays replayable for clients that reconnect (default 0: live only)
  --via http|nats         HTTP text publish on the pub route (default; signed with the key when the
                          configuration has one, for security.signedPublishing) or the NATS publish subject
  --idempotency-key <k>   the key to store it under (default: a new UUID); reuse it to retry safely
  --attempts <n>          attempts at most (default 6)
  --url <base>            the server's base URL (default: the listener serving the pub route)
  --nats-url <url>        NATS (default: NATS_URL, else the local nats-server on nats.localPort)
  --json                  print the receipt as JSON
  --config <file>         the server's config file
  -h, --help              this help

Exit codes: 0 stored; 1 not confirmed after every attempt (unreachable, 503, timeout): publish
again with the printed --idempotency-key; 2 usage error; 3 refused by the server (bad
request, key reused for another message, too large).`;

export const publish: Command = {
  name: 'publish',
  help,
  async run(argv, io) {
    const { values } = parseCommand(
      'publish',
      argv,
      {
        channel: { type: 'string', multiple: true },
        body: { type: 'string' },
        raw: { type: 'boolean' },
        expiry: { type: 'string' },
        via: { type: 'string' },
        'idempotency-key': { type: 'string' },
        attempts: { type: 'string' },
        url: { type: 'string' },
        'nats-url': { type: 'string' },
        json: { type: 'boolean' },
        config: { type: 'string' },
      },
      { min: 0, max: 0, name: '' },
    );
    if (values.help) {
      io.out(help);
      return 0;
    }
    const via = values.via ?? 'http';
    if (via !== 'http' && via !== 'nats') throw new UsageError(`--via takes http or nats, got "${via}"`, 'see jetpull publish --help');
    if (!values.channel?.length) throw new UsageError('--channel is required', 'give at least one --channel <private id>');
    if (values.body === undefined) throw new UsageError('--body is required', 'give the message as JSON, or --body - to read it from standard input');
    const expirySec = intOption('publish', 'expiry', values.expiry, 0);
    const maxAttempts = intOption('publish', 'attempts', values.attempts, 1);
    const body = values.body === '-' ? await io.readStdin() : values.body;
    const message = values.raw ? body : pullMessage(body);
    const config = commandConfig(io, values.config);
    const publisher = createPublisher({
      ...(via === 'http' ? { http: { url: routeUrl(config, 'pub', values.url), ...signatureOf(config) } } : { nats: natsOf(config, values['nats-url']) }),
      ...(maxAttempts === undefined ? {} : { retry: { maxAttempts } }),
      onRetry: (e) => io.err(`jetpull publish: attempt ${e.attempt} failed (${e.error.message}); retrying in ${e.delayMs} ms`),
    });
    try {
      const receipt = await publisher.publish({
        channels: values.channel,
        message,
        ...(expirySec === undefined ? {} : { expirySec }),
        ...(values['idempotency-key'] === undefined ? {} : { idempotencyKey: values['idempotency-key'] }),
      });
      report(io, values.json === true, receipt, values.channel.length);
      return 0;
    } catch (err) {
      throw asCliError(err);
    } finally {
      await publisher.close();
    }
  },
};

/** The body must be what the official client reads, unless --raw says otherwise. */
function pullMessage(body: string): PullMessage {
  const todo = 'give {"module_id":"…","command":"…","params":{…}}, or --raw to send it as it is';
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new UsageError('--body is not JSON', todo);
  }
  const m = parsed as Partial<PullMessage> | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m) || typeof m.module_id !== 'string' || typeof m.command !== 'string') {
    throw new UsageError('--body has no "module_id" and "command" strings, so the official client would drop it', todo);
  }
  return m as PullMessage;
}

function report(io: CliIo, json: boolean, receipt: { via: string; idempotencyKey: string; attempts: number; mids: readonly string[] | undefined }, channels: number): void {
  if (json) {
    io.out(JSON.stringify(receipt, null, 2));
    return;
  }
  io.out(`stored for ${channels} channel(s) via ${receipt.via} in ${receipt.attempts} attempt(s), idempotency key ${receipt.idempotencyKey}`);
  for (const mid of receipt.mids ?? []) io.out(`mid ${mid}`);
}

function asCliError(err: unknown): unknown {
  if (err instanceof InvalidPublishError) return new UsageError(err.message, 'see jetpull publish --help');
  if (err instanceof PublishRefusedError) return new CliError(ExitCode.Refused, `refused (${err.code}): ${err.message}`, 'the same request will be refused again: change it');
  if (err instanceof PublishFailedError) {
    return new CliError(ExitCode.Failure, `not confirmed as stored (${err.code}): ${err.message}`, `publish again with --idempotency-key ${err.idempotencyKey}: it is stored at most once`);
  }
  return err;
}
