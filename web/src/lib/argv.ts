// The terminal panel's command line → argv for mcp-proxmox's run_node_command. No shell runs
// anywhere: quotes only group words, and nothing is expanded.

export class ArgvError extends Error {}

/** Split on whitespace; '…' and "…" group words (\" and \\ escape inside double quotes). */
export function splitArgv(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote) {
      if (c === quote) quote = null;
      else if (quote === '"' && c === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) cur += line[++i] ?? "";
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new ArgvError(`unclosed ${quote}`);
  if (inWord) out.push(cur);
  return out;
}

/** Command history with up/down navigation (newest last, no consecutive duplicates). */
export class LineHistory {
  private readonly lines: string[] = [];
  private pos = 0;
  private draft = "";

  constructor(private readonly max = 200) {}

  push(line: string): void {
    if (line && this.lines[this.lines.length - 1] !== line) this.lines.push(line);
    if (this.lines.length > this.max) this.lines.shift();
    this.pos = this.lines.length;
    this.draft = "";
  }

  /** Older entry; `current` is what is typed now (kept as the draft to come back to). */
  up(current: string): string {
    if (this.pos === this.lines.length) this.draft = current;
    if (this.pos > 0) this.pos--;
    return this.lines[this.pos] ?? current;
  }

  down(): string {
    if (this.pos < this.lines.length) this.pos++;
    return this.pos === this.lines.length ? this.draft : (this.lines[this.pos] ?? "");
  }

  get size(): number {
    return this.lines.length;
  }
}
