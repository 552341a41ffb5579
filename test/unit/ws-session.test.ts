import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloseCode } from '../../src/errors/close-codes.ts';
import { SessionHarness } from '../helpers/session-harness.ts';
import { within } from '../helpers/wait.ts';

describe('WebSocket session', () => {
  let h: SessionHarness;
  before(async () => {
    h = await SessionHarness.start();
  });
  after(() => h.close());

  it('a session closed before its socket is bound closes the socket as soon as it arrives', async () => {
    const { session, client } = await h.ws({ closeBeforeBind: CloseCode.ServiceRestart });
    assert.equal(session.isClosed, true);
    const end = await within('the socket to be closed', client.ended, 3_000);
    assert.deepEqual(end, { kind: 'closed', code: CloseCode.ServiceRestart, reason: 'Server restarting.' });
  });
});
