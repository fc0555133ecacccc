// Command palette entries and their fuzzy filter.

export interface Command {
  id: string;
  label: string;
  hint?: string;
  run: () => void;
}

/** Case-insensitive subsequence match; a lower score is a better match (-1: no match). */
export function score(label: string, query: string): number {
  const l = label.toLowerCase();
  const q = query.toLowerCase().trim();
  if (!q) return 0;
  const at = l.indexOf(q);
  if (at >= 0) return at;
  let pos = -1;
  let gaps = 0;
  for (const ch of q) {
    const next = l.indexOf(ch, pos + 1);
    if (next < 0) return -1;
    gaps += next - pos - 1;
    pos = next;
  }
  return 100 + gaps;
}

export function filterCommands(cmds: readonly Command[], query: string): Command[] {
  return cmds
    .map((c) => ({ c, s: score(`${c.label} ${c.hint ?? ""}`, query) }))
    .filter((x) => x.s >= 0)
    .sort((a, b) => a.s - b.s)
    .map((x) => x.c);
}
