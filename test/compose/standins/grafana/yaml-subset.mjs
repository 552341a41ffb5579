// The YAML that Grafana provisioning files use: block mappings and sequences, plain and
// quoted scalars, comments. Anything else (flow collections, anchors, multi-line
// strings) is an error, so a file is never half read. Real Grafana reads full YAML.

function stripComment(line) {
  let quote;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i);
    }
  }
  return line;
}

function scalar(raw, no) {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null') return null;
  if (s.startsWith('"')) return JSON.parse(s);
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new Error(`line ${no}: unterminated string`);
    return s.slice(1, -1).replaceAll("''", "'");
  }
  if (/^[[{&*!|>]/.test(s)) throw new Error(`line ${no}: unsupported YAML: ${s}`);
  if (s === 'true' || s === 'false') return s === 'true';
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  return s;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s:'"-][^:]*?):(?:\s+(.*))?$/;

export function parseYaml(text) {
  const lines = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab in indentation`);
    const body = stripComment(raw).trimEnd();
    if (body.trim() === '' || body.trim() === '---') return;
    lines.push({ no: i + 1, indent: body.length - body.trimStart().length, text: body.trim() });
  });
  let pos = 0;
  const isItem = (l) => l.text === '-' || l.text.startsWith('- ');

  const block = (indent) => {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    return isItem(first) ? sequence(first.indent) : mapping(first.indent);
  };

  const mapping = (indent) => {
    const out = {};
    while (pos < lines.length && lines[pos].indent === indent && !isItem(lines[pos])) {
      const line = lines[pos];
      const m = KEY.exec(line.text);
      if (!m) throw new Error(`line ${line.no}: expected "key: value"`);
      const key = scalar(m[1], line.no);
      if (key in out) throw new Error(`line ${line.no}: duplicate key ${key}`);
      pos++;
      if (m[2] === undefined || m[2] === '') {
        const next = lines[pos];
        const nested = next && (next.indent > indent || (next.indent === indent && isItem(next)));
        out[key] = nested ? block(next.indent) : null;
      } else {
        out[key] = scalar(m[2], line.no);
      }
    }
    const stray = lines[pos];
    if (stray && stray.indent > indent) throw new Error(`line ${stray.no}: bad indentation`);
    return out;
  };

  const sequence = (indent) => {
    const out = [];
    while (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos])) {
      const line = lines[pos];
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        pos++;
        out.push(block(indent + 1));
      } else if (KEY.test(rest)) {
        // "- key: value" opens a mapping whose other keys align with "key".
        lines[pos] = { no: line.no, indent: indent + (line.text.length - rest.length), text: rest };
        out.push(mapping(lines[pos].indent));
      } else {
        pos++;
        out.push(scalar(rest, line.no));
      }
    }
    return out;
  };

  const doc = block(0);
  if (pos !== lines.length) throw new Error(`line ${lines[pos].no}: unexpected content`);
  return doc;
}
