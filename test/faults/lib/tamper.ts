import type { IncomingEvent } from './official-session.ts';
import { bodyNumber } from './stream-admin.ts';

/**
 * Deliberate client faults for the checker's self-test: a client that loses one
 * message before its application sees it, and one that hands a message to its
 * application a second time later on (past its last-10 de-duplication).
 */

export function dropMessage(n: number): (events: IncomingEvent[]) => IncomingEvent[] {
  return (events) => events.filter((e) => bodyNumber(e.body) !== n);
}

/**
 * Hands message `n` to the client again at the start of a later batch, once `after`
 * more messages arrived in earlier batches (so the client's trimmed last-10 list no
 * longer holds its mid and the application sees it twice).
 */
export function repeatMessage(n: number, after: number): (events: IncomingEvent[]) => IncomingEvent[] {
  let kept: IncomingEvent | undefined;
  let since = 0;
  let done = false;
  return (events) => {
    const out = [...events];
    if (!done && kept !== undefined && since >= after) {
      out.unshift(kept);
      done = true;
    }
    for (const e of events) {
      if (kept === undefined && bodyNumber(e.body) === n) kept = e;
      else if (kept !== undefined) since++;
    }
    return out;
  };
}
