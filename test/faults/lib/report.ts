import { logsNear, phaseAt, type Findings, type History, type LostRec } from './checker.ts';
import { fmtMs } from './stats.ts';
import { rel } from './time.ts';

/**
 * The checker's findings as text: totals, one block per phase with its recovery
 * figures, then enough detail on lost and duplicated messages to debug them
 * (which client, which gateway, what it got around that time, what the gateway
 * logged then).
 */

export interface ReportContext {
  title: string;
  /** How many lost messages / duplicates / mid issues to print in full. */
  detailLimit: number;
}

const mid8 = (mid: string): string => `…${mid.slice(-8)}`;

export function formatReport(h: History, f: Findings, ctx: ReportContext): string {
  const o = h.origin;
  const out: string[] = [];
  const t = f.totals;
  out.push(`=== ${ctx.title} ===`);
  out.push(
    `publishes ${t.published}, acknowledged ${t.acked}, gave up ${t.failedPublishes}; clients ${t.clients}; ` +
      `expected deliveries ${t.expectedDeliveries}, delivered ${t.delivered}`,
  );
  out.push(
    `LOST ${t.lost} | VISIBLE DUPLICATES ${t.visibleDuplicates} (dropped by the client's de-duplication: ${t.hiddenDuplicates}) | ` +
      `MIDS NOT INCREASING ${t.midIssues} | MIDS NAMING TWO MESSAGES ${t.midConflicts} | UNEXPECTED EXITS ${t.unexpectedExits} | NOT READY AT END ${t.notReadyAtEnd}`,
  );
  out.push(
    `delivery latency (send → first visible delivery) p50 ${fmtMs(f.deliveryLatency.p50)} p99 ${fmtMs(f.deliveryLatency.p99)} max ${fmtMs(f.deliveryLatency.max)}; ` +
      `publish latency (send → 200) p50 ${fmtMs(f.publishLatency.p50)} p99 ${fmtMs(f.publishLatency.p99)} max ${fmtMs(f.publishLatency.max)}`,
  );
  out.push('');
  out.push('per phase (times from the phase start; recovery from the fault / from its clearing):');
  for (const p of f.phases) {
    const ph = h.phases.find((x) => x.name === p.name && x.startAt === p.startAt)!;
    const lostBy = [...groupBy(f.lost.filter((l) => l.phase === p.name), (l) => l.client)].map(([c, l]) => `${c} ${l.length}`);
    out.push(
      `- ${p.name} [${rel(p.startAt, o)} .. ${rel(p.endAt, o)}]: lost ${p.lost}${lostBy.length ? ` (${lostBy.slice(0, 6).join(', ')}${lostBy.length > 6 ? `, +${lostBy.length - 6} clients` : ''})` : ''}, duplicates ${p.duplicates}, mid issues ${p.midIssues}; ` +
        `publishes ${p.published} (200: ${p.acked}, gave up ${p.failedPublishes}${Object.keys(p.refusals).length ? `, refusals ${JSON.stringify(p.refusals)}` : ''})`,
    );
    if (p.faultAt !== undefined) {
      out.push(
        `    first 200 after fault ${fmtMs(p.firstAckAfterFaultMs)}, after clearing ${fmtMs(p.firstAckAfterClearMs)}, longest gap without a 200 ${fmtMs(p.longestAckGapMs)}; ` +
          `publish p50 ${fmtMs(p.publishLatencyP50Ms)} p99 ${fmtMs(p.publishLatencyP99Ms)} max ${fmtMs(p.publishLatencyMaxMs)}`,
      );
      out.push(
        `    deliveries flowing again after the fault: p50 ${fmtMs(p.deliveryResumeP50Ms)}, slowest ${fmtMs(p.deliveryResumeMaxMs)} (${p.deliveryResumeSlowest ?? '-'})` +
          `${p.clientsWithoutDelivery ? `, ${p.clientsWithoutDelivery} awake clients got nothing sent after it` : ''}; ` +
          `delivery latency p50 ${fmtMs(p.deliveryLatencyP50Ms)} p99 ${fmtMs(p.deliveryLatencyP99Ms)}`,
      );
    } else {
      out.push(`    publish p50 ${fmtMs(p.publishLatencyP50Ms)} p99 ${fmtMs(p.publishLatencyP99Ms)}; delivery latency p50 ${fmtMs(p.deliveryLatencyP50Ms)} p99 ${fmtMs(p.deliveryLatencyP99Ms)}`);
    }
    for (const n of ph.notes) out.push(`    ${rel(n.at, o)} ${n.text}`);
  }

  if (f.stuck.length > 0) {
    out.push('');
    out.push('clients that stopped receiving and never caught up (their losses appear in every phase after the start):');
    for (const s of f.stuck) {
      out.push(`  ${s.client}: lost all ${s.lost} messages sent from ${rel(s.since, o)} on; last visible delivery ${rel(s.lastDelivery, o)}; connection ends since: ${JSON.stringify(s.closes)}`);
    }
  }
  if (f.lost.length > 0) {
    out.push('');
    out.push(`lost messages by verdict:`);
    for (const [verdict, list] of groupBy(f.lost, (l) => verdictKind(l.verdict))) {
      out.push(`  ${list.length} × ${verdict} (clients: ${[...new Set(list.map((l) => l.client))].join(', ')}; phases: ${[...new Set(list.map((l) => l.phase))].join(', ')})`);
    }
    out.push('');
    out.push(`lost messages in detail (first ${ctx.detailLimit} per phase):`);
    for (const [, list] of groupBy(f.lost, (l) => l.phase)) for (const l of list.slice(0, ctx.detailLimit)) out.push(...lostDetail(h, l));
  }
  if (f.duplicates.length > 0) {
    out.push('');
    out.push('visible duplicates by client and phase: ' + [...groupBy(f.duplicates, (d) => `${d.client} [${d.phase}]`)].map(([k, l]) => `${k} ${l.length}`).join(', '));
    out.push(`visible duplicates (first ${ctx.detailLimit * 2}):`);
    for (const d of f.duplicates.slice(0, ctx.detailLimit * 2)) {
      out.push(
        `  ${d.client} n=${d.n} → ${d.channels.map((c) => c.slice(0, 8)).join('/')} [${d.phase}]: ` + d.copies.map((c) => `${rel(c.at, o)} mid ${mid8(c.mid)} conn ${c.conn} ${c.gateway} frame ${c.frame}`).join(' / '),
      );
    }
  }
  if (f.midIssues.length > 0) {
    out.push('');
    out.push('mids not increasing by kind: ' + [...groupBy(f.midIssues, (m) => m.kind)].map(([k, l]) => `${k} ${l.length} (clients ${[...new Set(l.map((m) => m.client))].join(', ')})`).join('; '));
    out.push(`mids not increasing (first ${ctx.detailLimit * 2}):`);
    for (const m of f.midIssues.slice(0, ctx.detailLimit * 2)) {
      out.push(`  ${m.client} [${m.phase}] ${rel(m.at, o)} ${m.kind}: ${m.mid} after ${m.previous} (conn ${m.conn}, ${m.gateway})`);
    }
  }
  if (f.midConflicts.length > 0) {
    out.push('');
    out.push('mids that reached clients as two different messages by phase: ' + [...groupBy(f.midConflicts, (m) => m.phase)].map(([k, l]) => `${k} ${l.length}`).join(', '));
    for (const m of f.midConflicts.slice(0, ctx.detailLimit * 2)) {
      out.push(
        `  ${m.mid}: n=${m.first.n} to ${m.first.client} via ${m.first.gateway} at ${rel(m.first.at, o)}, then n=${m.second.n} to ${m.second.client} via ${m.second.gateway} at ${rel(m.second.at, o)} [${m.phase}]; ` +
          `stream holds n=${m.first.n} at seq ${m.storedFirst?.join(',') ?? '?'} and n=${m.second.n} at seq ${m.storedSecond?.join(',') ?? '?'}`,
      );
    }
  }
  const problems = h.logs.filter((l) => l.level >= 40 && !['nats disconnected', 'nats reconnected'].includes(l.msg));
  if (problems.length > 0) {
    out.push('');
    out.push('warnings and errors the processes logged (by process, message and error):');
    for (const [k, list] of groupBy(problems, (l) => `${l.process}: ${l.msg}${errorText(l.fields) ? ` (${errorText(l.fields)})` : ''}`)) {
      out.push(`  ${list.length} × ${k} [${[...new Set(list.map((l) => phaseAt(h.phases, l.at)))].join(', ')}]`);
    }
  }
  out.push('');
  out.push('processes:');
  for (const e of f.unexpectedExits) out.push(`  UNEXPECTED EXIT ${e.process} ${rel(e.at, o)} ${e.detail ?? ''}`);
  for (const e of f.startFailures) out.push(`  start failed (retried) ${e.process} ${rel(e.at, o)} ${(e.detail ?? '').slice(0, 200)}`);
  for (const r of f.notReady) out.push(`  /readyz not 200: ${r.process} ${rel(r.from, o)} .. ${r.to === undefined ? 'END' : rel(r.to, o)} [${r.phase}]`);
  if (f.unexpectedExits.length + f.notReady.length + f.startFailures.length === 0) out.push('  every process stayed up and ready (apart from the kills)');
  return out.join('\n');
}

function lostDetail(h: History, l: LostRec): string[] {
  const o = h.origin;
  const out = [
    `  * ${l.client} (${l.transport}/${l.format}) n=${l.n} → CHANNEL_ID ${l.channels.map((c) => c.slice(0, 8)).join('/')} (${l.purpose}) [${l.phase}]`,
    `    sent ${rel(l.sentAt, o)}, 200 at ${rel(l.ackAt, o)}; stored as seq ${l.storedSeqs === undefined ? '(stream not read)' : l.storedSeqs.length ? l.storedSeqs.join(',') : 'NOT STORED'}; client on ${l.gatewayAtAck} at the 200`,
    `    verdict: ${l.verdict}`,
  ];
  if (l.connsAround.length > 0) {
    out.push(
      `    connections: ` +
        l.connsAround.map((k) => `c${k.conn} ${k.gateway} from ${k.startMid ? mid8(k.startMid) : 'no mid'} ${rel(k.startedAt, o)}..${rel(k.endedAt, o)} ${k.end ?? 'open'} (${k.messages} msgs)`).join('; '),
    );
  }
  if (l.around.length > 0) {
    out.push(`    got around then: ` + l.around.map((d) => `${rel(d.at, o)} n=${d.n} ${mid8(d.mid)} c${d.conn}${d.visible ? '' : ' (dup)'}`).join(', '));
  }
  const gw = l.gatewayAtAck === '-' ? undefined : l.gatewayAtAck;
  if (gw !== undefined) {
    const lines = logsNear(h.logs, gw, l.ackAt).slice(0, 6);
    if (lines.length > 0) out.push(`    ${gw} logged: ` + lines.map((x) => `${rel(x.at, o)} ${x.msg} ${JSON.stringify(x.fields).slice(0, 160)}`).join(' | '));
  }
  return out;
}

/** The error message of a log line, shortened, without the numbers that differ per request. */
function errorText(fields: Record<string, unknown>): string {
  const err = fields.err as { message?: unknown } | undefined;
  const text = typeof err?.message === 'string' ? err.message : '';
  return text.replace(/\d+/g, 'N').slice(0, 120);
}

/** The verdict without the numbers, to group lost messages by cause. */
function verdictKind(v: string): string {
  return v.split(':')[0]!;
}

function groupBy<T>(list: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of list) {
    const k = key(x);
    const l = m.get(k);
    if (l === undefined) m.set(k, [x]);
    else l.push(x);
  }
  return m;
}
