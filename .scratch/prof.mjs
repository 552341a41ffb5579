// usage: node prof.mjs file.cpuprofile [fromMs toMs] — self/total time by function within a window (ms from start)
import { readFileSync } from 'node:fs';
const [file, fromArg, toArg, topArg] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
let t = 0;
const times = p.timeDeltas.map((d) => (t += d) / 1000);
if (fromArg === undefined) {
  // activity per 250 ms bucket (non-idle samples)
  const buckets = new Map();
  p.samples.forEach((s, i) => { const n = nodes.get(s); const name = n.callFrame.functionName; if (name === '(idle)' || name === '(program)') return; const b = Math.floor(times[i] / 250); buckets.set(b, (buckets.get(b) ?? 0) + 1); });
  const total = p.samples.length; const per = (times.at(-1)) / total;
  for (const [b, c] of [...buckets].sort((a, b) => a[0] - b[0])) if (c * per > 40) console.log(`${b * 250} ms: busy ${(c * per / 2.5).toFixed(0)}%`);
  process.exit(0);
}
const from = Number(fromArg), to = Number(toArg), top = Number(topArg ?? 40);
const self = new Map(), total = new Map(), cat = new Map();
let n = 0;
const label = (node) => { const f = node.callFrame; return `${f.functionName || '(anon)'} ${f.url.replace(/.*\/(node_modules\/)?/, '')}:${f.lineNumber + 1}`; };
p.samples.forEach((s, i) => {
  if (times[i] < from || times[i] > to) return;
  const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i]) / 1000;
  n += dt;
  const node = nodes.get(s);
  const l = label(node);
  self.set(l, (self.get(l) ?? 0) + dt);
  const seen = new Set();
  for (let id = s; id !== undefined; id = parent.get(id)) { const ll = label(nodes.get(id)); if (seen.has(ll)) continue; seen.add(ll); total.set(ll, (total.get(ll) ?? 0) + dt); }
});
console.log(`window ${from}-${to} ms: ${n.toFixed(0)} ms sampled`);
const pr = (m, title) => { console.log(`--- ${title}`); for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(100 * v / n).toFixed(1).padStart(5)}% ${v.toFixed(0).padStart(6)} ms  ${k}`); };
pr(self, 'self'); pr(total, 'total');
const focus = process.argv[6];
if (focus) {
  const stacks = new Map();
  p.samples.forEach((s, i) => {
    if (times[i] < from || times[i] > to) return;
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i]) / 1000;
    const chain = []; for (let id = s; id !== undefined; id = parent.get(id)) chain.push(label(nodes.get(id)));
    const at = chain.findIndex((l) => l.startsWith(focus));
    if (at < 0) return;
    const key = chain.slice(at, at + 9).map((l) => l.split(' ')[0]).join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + dt);
  });
  console.log(`--- stacks through ${focus}`);
  for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${v.toFixed(0).padStart(5)} ms  ${k}`);
}
