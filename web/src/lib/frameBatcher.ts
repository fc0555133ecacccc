// Streaming tokens arrive many per frame; the store is committed at most once per animation frame.

export type Scheduler = (cb: () => void) => void;

export const animationFrame: Scheduler = (cb) => {
  if (typeof requestAnimationFrame === "function") requestAnimationFrame(() => cb());
  else setTimeout(cb, 16);
};

/** Collects text per key and hands it to `commit` in one call per scheduled frame. */
export class FrameBatcher {
  private pending = new Map<string, string>();
  private scheduled = false;

  constructor(
    private readonly commit: (batch: ReadonlyMap<string, string>) => void,
    private readonly schedule: Scheduler = animationFrame,
  ) {}

  push(key: string, text: string): void {
    this.pending.set(key, (this.pending.get(key) ?? "") + text);
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
  }

  /** Commit now (before any event that must be ordered after the tokens). */
  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.commit(batch);
  }
}
