/** Prometheus's HTTP API (/api/v1/query). */

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export async function query(prometheusUrl: string, expr: string): Promise<Sample[]> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? `HTTP ${res.status}`}`);
  // Scalars and strings come as one [time, value] pair; treat them as one unlabelled sample.
  if (body.data?.resultType === 'scalar' || body.data?.resultType === 'string') {
    return [{ metric: {}, value: body.data.result as unknown as [number, string] }];
  }
  return body.data?.result ?? [];
}

/** `up` of every target of a scrape job, by instance. */
export async function targetsUp(prometheusUrl: string, job: string): Promise<Map<string, number>> {
  const samples = await query(prometheusUrl, `up{job="${job}"}`);
  return new Map(samples.map((s) => [s.metric.instance ?? '', Number(s.value[1])]));
}
