// usage: node heap.mjs file.heapsnapshot [N connections] — self size by constructor/type
import { readFileSync } from 'node:fs';
const [file, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 1);
const snap = JSON.parse(readFileSync(file, 'utf8'));
const m = snap.snapshot.meta;
const nf = m.node_fields.length;
const types = m.node_types[0];
const iType = m.node_fields.indexOf('type'), iName = m.node_fields.indexOf('name'), iSize = m.node_fields.indexOf('self_size'), iEdges = m.node_fields.indexOf('edge_count');
const nodes = snap.nodes, strings = snap.strings;
const agg = new Map();
let total = 0;
for (let i = 0; i < nodes.length; i += nf) {
  const t = types[nodes[i + iType]];
  let name = strings[nodes[i + iName]];
  if (t === 'string' || t === 'concatenated string' || t === 'sliced string') name = '(string)';
  else if (t === 'code') name = '(code)';
  else if (t === 'number') name = '(number)';
  else if (t === 'array') name = `(array) ${name}`;
  else if (t === 'hidden') name = `(hidden) ${name}`;
  const key = `${t}:${name}`.slice(0, 90);
  const a = agg.get(key) ?? { count: 0, size: 0 };
  a.count++; a.size += nodes[i + iSize]; total += nodes[i + iSize];
  agg.set(key, a);
}
console.log(`total self ${(total / 1048576).toFixed(1)} MiB; per connection ${(total / N).toFixed(0)} B`);
for (const [k, v] of [...agg].sort((a, b) => b[1].size - a[1].size).slice(0, 60)) console.log(`${(v.size / 1024).toFixed(0).padStart(8)} KiB ${(v.size / N).toFixed(0).padStart(6)} B/conn ${String(v.count).padStart(8)} (${(v.count / N).toFixed(2)}/conn)  ${k}`);
