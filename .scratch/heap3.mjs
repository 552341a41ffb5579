// referrers of nodes of a type/name: "parentName.edgeName" counts
import { readFileSync } from 'node:fs';
const [file, typeArg, nameArg, nArg] = process.argv.slice(2);
const snap = JSON.parse(readFileSync(file, 'utf8'));
const m = snap.snapshot.meta; const nf = m.node_fields.length; const ef = m.edge_fields.length;
const types = m.node_types[0]; const etypes = m.edge_types[0];
const nodes = snap.nodes, edges = snap.edges, strings = snap.strings;
const iEdgeCount = m.node_fields.indexOf('edge_count');
const agg = new Map();
let e = 0;
for (let i = 0; i < nodes.length; i += nf) {
  const pname = `${types[nodes[i]]}:${strings[nodes[i + 1]].slice(0, 30)}`;
  for (let k = 0; k < nodes[i + iEdgeCount]; k++, e += ef) {
    const et = etypes[edges[e]]; const to = edges[e + 2];
    if (types[nodes[to]] !== typeArg || (nameArg !== '*' && strings[nodes[to + 1]] !== nameArg)) continue;
    if (et === 'weak') continue;
    const en = et === 'element' || et === 'hidden' ? `[${et}]` : strings[edges[e + 1]];
    const key = `${pname} .${en}`;
    agg.set(key, (agg.get(key) ?? 0) + 1);
  }
}
for (const [k, v] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, Number(nArg ?? 30))) console.log(`${String(v).padStart(8)}  ${k}`);
