import assert from 'node:assert/strict';
import { parser } from '@prometheus-io/lezer-promql';

/**
 * Grafana replaces its interval variables before the query reaches Prometheus; any
 * other $variable is not PromQL and fails to parse.
 */
const GRAFANA_INTERVALS = /\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}/g;

export interface PromqlNames {
  metrics: string[];
  labels: string[];
}

/** Metric and label names of a dashboard query, from Prometheus' own PromQL grammar. */
export function promqlNames(expr: string): PromqlNames {
  const query = expr.replace(GRAFANA_INTERVALS, '5m');
  const metrics: string[] = [];
  const labels: string[] = [];
  const errors: number[] = [];
  const cursor = parser.parse(query).cursor();
  do {
    if (cursor.type.isError) errors.push(cursor.from);
    else if (cursor.name === 'LabelName') labels.push(query.slice(cursor.from, cursor.to));
    else if (cursor.name === 'VectorSelector') {
      const name = cursor.node.getChild('Identifier');
      if (name) metrics.push(query.slice(name.from, name.to));
    }
  } while (cursor.next());
  assert.deepEqual(errors, [], `not valid PromQL at offset ${errors[0]}: ${query}`);
  return { metrics, labels };
}
