/** Parses the concatenated text frames into their JSON envelopes. */
export function parseTextFrames(text: string): Array<{ id: number; mid: string; channel: string; tag: string; time: string; text: unknown }> {
  const out = [];
  for (const m of text.matchAll(/#!NGINXNMS!#(.*?)#!NGINXNME!#/g)) out.push(JSON.parse(m[1]!));
  return out;
}
