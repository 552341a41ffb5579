import type { ClientRec, ConnRec, DeliveryRec, MidIssue } from './delivery-record.ts';
import type { LogLine, ProcessEvent } from './jetpull-process.ts';
import type { PublishRec } from './publish-load.ts';
import { max, percentile } from './stats.ts';
import type { PhaseRec } from './timeline.ts';

/**
 * Compares the history of acknowledged publishes with what every client got.
 *
 * A client should get an acknowledged publish when one of its channels is among the
 * publish's receivers, it had been subscribed (its first delivery) before the
 * publish was sent, and it is still alive at the end (sleeping in between is fine:
 * it comes back with its mid). Reported: lost messages, visible duplicates (the
 * application got the same publish twice after the client's last-10-mids
 * de-duplication), mids that did not increase, processes that exited or stopped
 * answering /readyz, and per phase the recovery figures.
 */

export interface History {
  origin: number;
  endAt: number;
  publishes: readonly PublishRec[];
  clients: readonly ClientRec[];
  phases: readonly PhaseRec[];
  processEvents: readonly ProcessEvent[];
  logs: readonly LogLine[];
  /** Where each lost message is stored, when the stream could be read: client channel → copies (n → seqs). */
  stored?: ReadonlyMap<string, ReadonlyMap<number, number[]>>;
}

export interface LostRec {
  client: string;
  transport: string;
  format: string;
  n: number;
  channels: string[];
  purpose: string;
  sentAt: number;
  ackAt: number;
  phase: string;
  /** Stream sequences of the copies on the client's channels; [] when not stored; undefined when unknown. */
  storedSeqs: number[] | undefined;
  /** Gateway the client was connected to when the publish was acknowledged ('-' when it was not connected). */
  gatewayAtAck: string;
  /** What the checker concludes went wrong. */
  verdict: string;
  /** The client's deliveries around the acknowledgement. */
  around: Array<{ at: number; conn: number; gateway: string; mid: string; n: number | undefined; visible: boolean }>;
  /** The client's connections/polls around the acknowledgement. */
  connsAround: ConnRec[];
}

export interface DuplicateRec {
  client: string;
  n: number;
  /** The publish's CHANNEL_ID: two receivers the client both holds are stored as two copies. */
  channels: string[];
  phase: string;
  copies: Array<{ at: number; conn: number; gateway: string; mid: string; frame: number }>;
}

export interface MidIssueRec extends MidIssue {
  client: string;
  phase: string;
}

/** One mid that reached clients as two different messages. */
export interface MidConflictRec {
  mid: string;
  first: { client: string; n: number; at: number; gateway: string };
  second: { client: string; n: number; at: number; gateway: string };
  phase: string;
  /** Stream sequences the two messages are stored at, when the stream was read. */
  storedFirst: number[] | undefined;
  storedSecond: number[] | undefined;
}

export interface NotReadyRec {
  process: string;
  from: number;
  to: number | undefined;
  phase: string;
}

export interface PhaseFigures {
  name: string;
  startAt: number;
  faultAt: number | undefined;
  clearedAt: number | undefined;
  endAt: number;
  lost: number;
  lostClients: number;
  duplicates: number;
  midIssues: number;
  published: number;
  acked: number;
  failedPublishes: number;
  refusals: Record<string, number>;
  /** From the fault to the first 200 of a publish sent after it. */
  firstAckAfterFaultMs: number | undefined;
  /** From the fault's end (restart, resume) to the first 200 of a publish sent after that. */
  firstAckAfterClearMs: number | undefined;
  /** Longest time without any 200 during the phase. */
  longestAckGapMs: number | undefined;
  publishLatencyP50Ms: number;
  publishLatencyP99Ms: number;
  publishLatencyMaxMs: number;
  /** Per client awake at the fault: until its first delivery of a message sent after the fault. */
  deliveryResumeP50Ms: number;
  deliveryResumeMaxMs: number;
  deliveryResumeSlowest: string | undefined;
  /** Clients that got nothing sent after the fault. */
  clientsWithoutDelivery: number;
  deliveryLatencyP50Ms: number;
  deliveryLatencyP99Ms: number;
}

export interface Findings {
  totals: {
    published: number;
    acked: number;
    failedPublishes: number;
    clients: number;
    expectedDeliveries: number;
    delivered: number;
    lost: number;
    visibleDuplicates: number;
    hiddenDuplicates: number;
    midIssues: number;
    midConflicts: number;
    unexpectedExits: number;
    notReadyAtEnd: number;
  };
  lost: LostRec[];
  duplicates: DuplicateRec[];
  midIssues: MidIssueRec[];
  midConflicts: MidConflictRec[];
  unexpectedExits: ProcessEvent[];
  startFailures: ProcessEvent[];
  notReady: NotReadyRec[];
  notReadyAtEnd: string[];
  /** Clients whose lost messages run to the end: they stopped receiving and never caught up again. */
  stuck: Array<{ client: string; lost: number; since: number; lastDelivery: number | undefined; closes: Record<string, number> }>;
  phases: PhaseFigures[];
  deliveryLatency: { p50: number; p99: number; max: number };
  publishLatency: { p50: number; p99: number; max: number };
}

export function phaseAt(phases: readonly PhaseRec[], t: number): string {
  for (const p of phases) if (t >= p.startAt && t < p.endAt) return p.name;
  if (phases.length > 0 && t < phases[0]!.startAt) return 'setup';
  return 'drain';
}

const seqOf = (mid: string): number => Number(mid.slice(10));
const epochOf = (mid: string): string => mid.slice(0, 10);

export function check(h: History): Findings {
  const byN = new Map<number, PublishRec>();
  for (const p of h.publishes) byN.set(p.n, p);
  const lost: LostRec[] = [];
  const duplicates: DuplicateRec[] = [];
  const midIssues: MidIssueRec[] = [];
  const latencies: number[] = [];
  let expectedDeliveries = 0;
  let delivered = 0;
  let hiddenDuplicates = 0;

  for (const c of h.clients) {
    const visibleByN = new Map<number, DeliveryRec[]>();
    for (const d of c.deliveries) {
      if (d.n === undefined) continue;
      if (!d.visible) {
        hiddenDuplicates++;
        continue;
      }
      const list = visibleByN.get(d.n);
      if (list === undefined) visibleByN.set(d.n, [d]);
      else list.push(d);
    }
    for (const [n, list] of visibleByN) {
      const pub = byN.get(n);
      if (pub !== undefined) latencies.push(list[0]!.at - pub.sentAt);
      if (list.length > 1) {
        duplicates.push({
          client: c.id,
          n,
          channels: pub?.channels ?? [],
          phase: phaseAt(h.phases, list[1]!.at),
          copies: list.map((d) => ({ at: d.at, conn: d.conn, gateway: d.gateway, mid: d.mid, frame: d.frame })),
        });
      }
    }
    for (const issue of c.midIssues) midIssues.push({ ...issue, client: c.id, phase: phaseAt(h.phases, issue.at) });

    for (const p of h.publishes) {
      if (!shouldReceive(c, p)) continue;
      expectedDeliveries++;
      if (visibleByN.has(p.n)) {
        delivered++;
        continue;
      }
      lost.push(explainLoss(h, c, p));
    }
  }

  const { unexpectedExits, startFailures, notReady, notReadyAtEnd } = processFindings(h);
  const stuck = stuckClients(h, lost);
  const midConflicts = findMidConflicts(h);
  const acked = h.publishes.filter((p) => p.ackAt !== undefined);
  const publishLat = acked.map((p) => p.ackAt! - p.sentAt);
  return {
    totals: {
      published: h.publishes.length,
      acked: acked.length,
      failedPublishes: h.publishes.filter((p) => p.failed).length,
      clients: h.clients.length,
      expectedDeliveries,
      delivered,
      lost: lost.length,
      visibleDuplicates: duplicates.reduce((s, d) => s + d.copies.length - 1, 0),
      hiddenDuplicates,
      midIssues: midIssues.length,
      midConflicts: midConflicts.length,
      unexpectedExits: unexpectedExits.length,
      notReadyAtEnd: notReadyAtEnd.length,
    },
    lost,
    duplicates,
    midIssues,
    midConflicts,
    unexpectedExits,
    startFailures,
    notReady,
    notReadyAtEnd,
    stuck,
    phases: h.phases.map((ph) => phaseFigures(h, ph, lost, duplicates, midIssues, byN)),
    deliveryLatency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: max(latencies) },
    publishLatency: { p50: percentile(publishLat, 50), p99: percentile(publishLat, 99), max: max(publishLat) },
  };
}

export function shouldReceive(c: ClientRec, p: PublishRec): boolean {
  if (p.ackAt === undefined) return false;
  if (c.subscribedAt === undefined || p.sentAt < c.subscribedAt) return false;
  if (c.stoppedAt !== undefined) return false;
  return p.channels.some((ch) => c.channels.includes(ch));
}

function connAt(c: ClientRec, t: number): ConnRec | undefined {
  return c.conns.find((k) => k.startedAt <= t && (k.endedAt === undefined || k.endedAt >= t));
}

/** Why a client never got a message, read from its own record and where the message is stored. */
function explainLoss(h: History, c: ClientRec, p: PublishRec): LostRec {
  const ackAt = p.ackAt!;
  let storedSeqs: number[] | undefined;
  if (h.stored !== undefined) {
    const seqs: number[] = [];
    let known = false;
    for (const ch of c.channels) {
      const m = h.stored.get(ch);
      if (m === undefined) continue;
      known = true;
      seqs.push(...(m.get(p.n) ?? []));
    }
    storedSeqs = known ? seqs.sort((a, b) => a - b) : undefined;
  }
  const at = connAt(c, ackAt);
  const gatewayAtAck = at === undefined || (c.transport === 'ws' && at.openedAt === undefined) ? '-' : at.gateway;
  // The deliveries and connections closest to the acknowledgement, in time order.
  const around = c.deliveries
    .filter((d) => Math.abs(d.at - ackAt) <= 5_000)
    .sort((a, b) => Math.abs(a.at - ackAt) - Math.abs(b.at - ackAt))
    .slice(0, 12)
    .sort((a, b) => a.at - b.at)
    .map((d) => ({ at: d.at, conn: d.conn, gateway: d.gateway, mid: d.mid, n: d.n, visible: d.visible }));
  const connsAround = c.conns.filter((k) => (k.endedAt ?? Infinity) >= ackAt - 500 && k.startedAt <= ackAt + 10_000).slice(0, 6);
  return {
    client: c.id,
    transport: c.transport,
    format: c.format,
    n: p.n,
    channels: p.channels,
    purpose: p.purpose,
    sentAt: p.sentAt,
    ackAt,
    phase: phaseAt(h.phases, ackAt),
    storedSeqs,
    gatewayAtAck,
    verdict: verdictFor(c, p, storedSeqs, (n) => h.publishes[n - 1]?.n === n ? h.publishes[n - 1] : h.publishes.find((x) => x.n === n)),
    around,
    connsAround,
  };
}

function verdictFor(c: ClientRec, p: PublishRec, storedSeqs: number[] | undefined, pubOf: (n: number) => PublishRec | undefined): string {
  if (storedSeqs !== undefined && storedSeqs.length === 0) {
    return 'not in the stream: acknowledged (200) but not stored on any of the client\'s channels (publisher / NATS), or the stream was recreated since';
  }
  const slept = c.sleeps.some((s) => s.from <= p.ackAt! && (s.to ?? Infinity) >= p.sentAt);
  if (storedSeqs === undefined) {
    // Without the stream's sequences, "later" means a publish sent after this one was acknowledged.
    const after = c.deliveries.find((d) => d.n !== undefined && (pubOf(d.n)?.sentAt ?? 0) > p.ackAt!);
    return after === undefined
      ? 'nothing reached the client after it (stream not readable to tell more)'
      : `skipped: the client got later messages (first ${after.mid} on ${after.gateway}) but not this one (stream not readable to tell more)`;
  }
  const seq = storedSeqs[0]!;
  // Where the client's position first moved past the message without delivering it. Only
  // what happened after it was sent counts: sequences restart when the stream is recreated.
  for (const k of c.conns) {
    if (k.endedAt !== undefined && k.endedAt < p.sentAt) continue;
    const past = c.deliveries.find((d) => d.conn === k.conn && d.at >= p.sentAt && seqOf(d.mid) > seq);
    // A mid of another epoch (a recreated stream) asks for everything retained: it starts before any sequence.
    const otherEpoch = k.startMid !== undefined && past !== undefined && epochOf(k.startMid) !== epochOf(past.mid);
    const startSeq = k.startMid === undefined ? undefined : otherEpoch ? 0 : seqOf(k.startMid);
    if (past !== undefined) {
      const before = startSeq !== undefined && startSeq < seq;
      if (c.transport === 'longpoll') {
        return before
          ? `long-poll answer skipped it: poll ${k.conn} on ${k.gateway} with mid …${k.startMid!.slice(-8)} (${otherEpoch ? 'another epoch' : `seq ${startSeq}`}) answered seq ${seqOf(past.mid)} but not seq ${seq}${slept ? ' (after a sleep)' : ''}`
          : `long-poll resumed past it: poll ${k.conn} on ${k.gateway} started at seq ${startSeq ?? 'none'} > ${seq}`;
      }
      if (past.frame === 0 && before) {
        return `gateway replay skipped it: connection ${k.conn} to ${k.gateway} opened with ${otherEpoch ? 'a mid of another epoch' : `mid seq ${startSeq}`} and replayed up to seq ${seqOf(past.mid)} without seq ${seq}${slept ? ' (after a sleep)' : ''}`;
      }
      if (before || startSeq === undefined) {
        return `live delivery skipped it: connection ${k.conn} to ${k.gateway} (open since ${startSeq === undefined ? 'the start' : `mid seq ${startSeq}`}) delivered seq ${seqOf(past.mid)} in frame ${past.frame} but never seq ${seq} (hub live feed / catch-up / gap fill)`;
      }
      return `resumed past it: connection ${k.conn} to ${k.gateway} opened with mid seq ${startSeq} > ${seq}; an earlier connection had moved the client's mid past it without delivering it`;
    }
    if (c.transport === 'longpoll' && k.end === '304' && startSeq !== undefined && startSeq < seq) {
      // The next poll's start mid is this 304's Last-Message-Id.
      const nextPoll = c.conns.find((x) => x.conn === k.conn + 1);
      if (nextPoll?.startMid !== undefined && seqOf(nextPoll.startMid) > seq) {
        return `304 Last-Message-Id jumped past it: poll ${k.conn} on ${k.gateway} with seq ${startSeq} got 304 with seq ${seqOf(nextPoll.startMid)}`;
      }
    }
  }
  const last = c.conns.at(-1);
  const replayTooBig = c.conns.filter((k) => k.end === 'close 4008' && (k.endedAt ?? Infinity) >= p.sentAt).length;
  if (replayTooBig > 0) {
    return `never caught up: ${replayTooBig} connections closed with 4008 (outbox over its limit), the client never got past seq ${seq}; last connection ${last?.conn} to ${last?.gateway} (${last?.end ?? 'open'})`;
  }
  return `nothing delivered past it: the client never got seq ${seq} or anything later on its connections; last connection ${last?.conn} to ${last?.gateway} (${last?.end ?? 'open'})`;
}

/**
 * A client is stuck when it lost every message it should have got from some point
 * to the end (at least 20 of them): one cause then shows up in every later phase.
 */
function stuckClients(h: History, lost: readonly LostRec[]): Findings['stuck'] {
  const out: Findings['stuck'] = [];
  for (const c of h.clients) {
    const mine = lost.filter((l) => l.client === c.id);
    if (mine.length < 20) continue;
    const lostSet = new Set(mine.map((l) => l.n));
    const expected = h.publishes.filter((p) => shouldReceive(c, p)).sort((a, b) => a.sentAt - b.sentAt);
    let i = expected.length;
    while (i > 0 && lostSet.has(expected[i - 1]!.n)) i--;
    const tail = expected.length - i;
    if (tail < 20) continue;
    const closes: Record<string, number> = {};
    const since = expected[i]!.sentAt;
    for (const k of c.conns) if ((k.endedAt ?? 0) >= since && k.end !== undefined) closes[k.end] = (closes[k.end] ?? 0) + 1;
    const visible = c.deliveries.filter((d) => d.visible);
    out.push({ client: c.id, lost: tail, since, lastDelivery: visible.at(-1)?.at, closes });
  }
  return out;
}

/**
 * A mid names one stored message: the same mid reaching clients with two different
 * bodies means a sequence was reused (the stream lost its tail and handed the
 * sequence out again, or a gateway labelled a message with the wrong one).
 */
function findMidConflicts(h: History): MidConflictRec[] {
  const first = new Map<string, { client: string; n: number; at: number; gateway: string }>();
  const seen = new Set<string>();
  const out: MidConflictRec[] = [];
  const storedOf = (c: ClientRec, n: number): number[] | undefined => {
    if (h.stored === undefined) return undefined;
    const seqs = c.channels.flatMap((ch) => h.stored!.get(ch)?.get(n) ?? []);
    return seqs.length > 0 ? seqs : undefined;
  };
  const deliveries = h.clients.flatMap((c) => c.deliveries.map((d) => ({ c, d }))).sort((a, b) => a.d.at - b.d.at);
  for (const { c, d } of deliveries) {
    if (d.n === undefined) continue;
    const f = first.get(d.mid);
    if (f === undefined) {
      first.set(d.mid, { client: c.id, n: d.n, at: d.at, gateway: d.gateway });
      continue;
    }
    if (f.n === d.n || seen.has(`${d.mid}/${d.n}`)) continue;
    seen.add(`${d.mid}/${d.n}`);
    const fc = h.clients.find((x) => x.id === f.client)!;
    out.push({
      mid: d.mid,
      first: f,
      second: { client: c.id, n: d.n, at: d.at, gateway: d.gateway },
      phase: phaseAt(h.phases, d.at),
      storedFirst: storedOf(fc, f.n),
      storedSecond: storedOf(c, d.n),
    });
  }
  return out;
}

function processFindings(h: History): Pick<Findings, 'unexpectedExits' | 'startFailures' | 'notReady' | 'notReadyAtEnd'> {
  const unexpectedExits = h.processEvents.filter((e) => e.what === 'exited' && !e.expected);
  const startFailures = h.processEvents.filter((e) => e.what === 'start-failed');
  const notReady: NotReadyRec[] = [];
  const open = new Map<string, NotReadyRec>();
  for (const e of h.processEvents) {
    if (e.what === 'not-ready') {
      const r: NotReadyRec = { process: e.process, from: e.at, to: undefined, phase: phaseAt(h.phases, e.at) };
      notReady.push(r);
      open.set(e.process, r);
    } else if (e.what === 'ready-again' || e.what === 'exited' || e.what === 'killed') {
      const r = open.get(e.process);
      if (r !== undefined) {
        r.to = e.at;
        open.delete(e.process);
      }
    }
  }
  return { unexpectedExits, startFailures, notReady, notReadyAtEnd: [...open.keys()] };
}

function phaseFigures(
  h: History,
  ph: PhaseRec,
  lost: readonly LostRec[],
  duplicates: readonly DuplicateRec[],
  midIssues: readonly MidIssueRec[],
  byN: ReadonlyMap<number, PublishRec>,
): PhaseFigures {
  const inPhase = (t: number): boolean => t >= ph.startAt && t < ph.endAt;
  const sent = h.publishes.filter((p) => inPhase(p.sentAt));
  const acked = sent.filter((p) => p.ackAt !== undefined);
  const lat = acked.map((p) => p.ackAt! - p.sentAt);
  const refusals: Record<string, number> = {};
  for (const p of sent) for (const [k, v] of Object.entries(p.refusals)) refusals[k] = (refusals[k] ?? 0) + v;
  const firstAckAfter = (t: number | undefined): number | undefined => {
    if (t === undefined) return undefined;
    let best: number | undefined;
    for (const p of h.publishes) if (p.sentAt >= t && p.ackAt !== undefined && (best === undefined || p.ackAt < best)) best = p.ackAt;
    return best === undefined ? undefined : best - t;
  };
  const ackTimes = h.publishes
    .map((p) => p.ackAt)
    .filter((t): t is number => t !== undefined && inPhase(t))
    .sort((a, b) => a - b);
  let gap: number | undefined;
  if (ackTimes.length > 0) {
    gap = Math.max(ackTimes[0]! - ph.startAt, ph.endAt - ackTimes.at(-1)!);
    for (let i = 1; i < ackTimes.length; i++) gap = Math.max(gap, ackTimes[i]! - ackTimes[i - 1]!);
  } else {
    gap = ph.endAt - ph.startAt;
  }

  // Delivery resumption: per client awake at the fault, its first delivery of a publish sent after it.
  const t0 = ph.faultAt ?? ph.startAt;
  const resume: Array<{ client: string; ms: number }> = [];
  let without = 0;
  const deliveryLat: number[] = [];
  for (const c of h.clients) {
    if (c.subscribedAt === undefined || c.stoppedAt !== undefined) continue;
    const asleep = c.sleeps.some((s) => s.from <= t0 && (s.to ?? Infinity) > t0);
    let first: number | undefined;
    for (const d of c.deliveries) {
      if (!d.visible || d.n === undefined) continue;
      const p = byN.get(d.n);
      if (p === undefined) continue;
      if (inPhase(p.sentAt)) deliveryLat.push(d.at - p.sentAt);
      if (p.sentAt >= t0 && (first === undefined || d.at < first)) first = d.at;
    }
    if (asleep) continue;
    if (first === undefined) without++;
    else resume.push({ client: c.id, ms: first - t0 });
  }
  resume.sort((a, b) => a.ms - b.ms);
  const lostHere = lost.filter((l) => l.phase === ph.name);
  return {
    name: ph.name,
    startAt: ph.startAt,
    faultAt: ph.faultAt,
    clearedAt: ph.clearedAt,
    endAt: ph.endAt,
    lost: lostHere.length,
    lostClients: new Set(lostHere.map((l) => l.client)).size,
    duplicates: duplicates.filter((d) => d.phase === ph.name).length,
    midIssues: midIssues.filter((m) => m.phase === ph.name).length,
    published: sent.length,
    acked: acked.length,
    failedPublishes: sent.filter((p) => p.failed).length,
    refusals,
    firstAckAfterFaultMs: firstAckAfter(ph.faultAt),
    firstAckAfterClearMs: firstAckAfter(ph.clearedAt),
    longestAckGapMs: gap,
    publishLatencyP50Ms: percentile(lat, 50),
    publishLatencyP99Ms: percentile(lat, 99),
    publishLatencyMaxMs: max(lat),
    deliveryResumeP50Ms: percentile(resume.map((r) => r.ms), 50),
    deliveryResumeMaxMs: resume.at(-1)?.ms ?? NaN,
    deliveryResumeSlowest: resume.at(-1)?.client,
    clientsWithoutDelivery: without,
    deliveryLatencyP50Ms: percentile(deliveryLat, 50),
    deliveryLatencyP99Ms: percentile(deliveryLat, 99),
  };
}

/** Log lines of a process within `ms` of `t`, for a lost message's debug output. */
export function logsNear(logs: readonly LogLine[], gateway: string, t: number, ms = 3_000): LogLine[] {
  return logs.filter((l) => l.process === gateway && Math.abs(l.at - t) <= ms && !NOISE.has(l.msg));
}

/** Log lines that say nothing about one message (every 4008 of a stuck client, every 503). */
const NOISE = new Set(['connection refused', 'slow client disconnected']);
