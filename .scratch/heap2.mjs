import { readFileSync } from 'node:fs';
const [file, typeArg, nArg] = process.argv.slice(2);
const snap = JSON.parse(readFileSync(file, 'utf8'));
const m = snap.snapshot.meta; const nf = m.node_fields.length; const types = m.node_types[0];
const nodes = snap.nodes, strings = snap.strings;
const agg = new Map();
for (let i = 0; i < nodes.length; i += nf) {
  const t = types[nodes[i]];
  if (t !== typeArg) continue;
  let name = strings[nodes[i + 1]];
  if (typeArg === 'string') name = name.slice(0, 40).replace(/[0-9a-f]{32}/g, 'ID').replace(/\d+/g, 'N');
  const a = agg.get(name) ?? { count: 0, size: 0 }; a.count++; a.size += nodes[i + 3]; agg.set(name, a);
}
for (const [k, v] of [...agg].sort((a, b) => b[1].size - a[1].size).slice(0, Number(nArg ?? 25))) console.log(`${(v.size / 1024).toFixed(0).padStart(7)} KiB ${String(v.count).padStart(7)}  ${JSON.stringify(k)}`);
