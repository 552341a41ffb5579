import { Metrics } from '../../../src/metrics/metrics.ts';

export interface KnownMetrics {
  /** Series names a query may use, histogram and summary series included. */
  names: Set<string>;
  labels: Set<string>;
}

/** The series suffixes Prometheus sees for each metric type. */
const SERIES: Record<string, string[]> = { histogram: ['_bucket', '_count', '_sum'], summary: ['', '_count', '_sum'] };

/**
 * What jetpull exports: the real registry of src/metrics/metrics.ts, built with idle
 * sources, its metric names and label names, plus the labels every series carries
 * (role and process, set as default labels in src/app.ts) and le of the buckets.
 */
export async function knownMetrics(): Promise<KnownMetrics> {
  const { registry } = new Metrics({ nats: () => ({ connected: true, reconnects: 0 }), publishers: () => undefined, gateway: () => undefined, stream: () => undefined }, { role: 'all', process: 'test' });
  const names = new Set<string>();
  const labels = new Set(['role', 'process', 'le']);
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const suffix of SERIES[String(metric.type)] ?? ['']) names.add(metric.name + suffix);
    // prom-client keeps the declared label names on the metric object; its types omit them.
    const declared = (registry.getSingleMetric(metric.name) as { labelNames?: readonly string[] } | undefined)?.labelNames ?? [];
    for (const l of declared) labels.add(l);
    for (const v of metric.values) for (const l of Object.keys(v.labels)) labels.add(l);
  }
  registry.clear();
  return { names, labels };
}
