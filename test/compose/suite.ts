import { after, before, describe } from 'node:test';
import { configurationChecks } from './checks/configuration.ts';
import { freshStartChecks, outcomeOfUp, type StartOutcome } from './checks/fresh-starts.ts';
import { gatewayStopChecks } from './checks/gateway-stop.ts';
import { monitoringChecks } from './checks/monitoring.ts';
import { natsFailoverChecks } from './checks/nats-failover.ts';
import { natsUsersChecks } from './checks/nats-users.ts';
import { protocolChecks } from './checks/protocol.ts';
import { startupChecks } from './checks/startup.ts';
import { testcontainersChecks } from './checks/testcontainers.ts';
import { createContext, saveStackLogs } from './context.ts';
import { tail } from './exec.ts';
import { printTimings, record, recordPreparation } from './timings.ts';

/**
 * The compose suite: the project's own docker-compose.yml started on a real engine and
 * checked end to end (run by test/compose/run.sh, which prepares the engine). The
 * checks run in order and some leave state for the next (a stopped gateway is started
 * again by the check after it); the fresh starts come last because they recreate the
 * stack.
 */

const ctx = createContext();
const { managed } = ctx.settings;
const needsEngine = managed ? false : 'against a deployment: no control over its containers';
recordPreparation(process.env.JETPULL_COMPOSE_PREP);

describe('docker-compose.yml as compose reads it', { skip: needsEngine }, () => {
  configurationChecks(ctx);
});

describe('testcontainers on this engine', { skip: needsEngine }, () => {
  testcontainersChecks(ctx);
});

describe(managed ? 'the running stack' : `the deployment at ${ctx.settings.publicUrl}`, () => {
  let firstOutcome: StartOutcome | undefined;

  before(async () => {
    if (!managed) return;
    // Nothing left from an interrupted run: the first up starts from nothing.
    await ctx.compose.down();
    ctx.firstUp = await ctx.compose.up();
    record('first up --wait: build jetpull, start, all healthy', ctx.firstUp.ms);
    firstOutcome = await outcomeOfUp(ctx.compose, ctx.firstUp);
    if (ctx.firstUp.code !== 0) {
      // A start-up crash loop is a known defect (reported by the fresh-start check); the
      // other checks still need a stack, so wait once more for it to settle.
      const again = await ctx.compose.up();
      if (again.code !== 0) {
        const ps = await ctx.compose.run(['ps', '--all']);
        throw new Error(`up --wait exited ${ctx.firstUp.code}, then ${again.code}:\n${tail(again.stderr, 40)}\n${ps.stdout}`);
      }
    }
  });

  after(async () => {
    if (managed) {
      await saveStackLogs(ctx, 'stack-last.log');
      const down = await ctx.compose.down();
      record('down --volumes', down.ms);
    }
    printTimings();
  });

  if (managed) startupChecks(ctx);
  protocolChecks(ctx);
  monitoringChecks(ctx);
  if (managed) {
    natsFailoverChecks(ctx);
    gatewayStopChecks(ctx);
    natsUsersChecks(ctx);
    freshStartChecks(ctx, () => firstOutcome);
  }
});
