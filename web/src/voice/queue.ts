// Gapless, in-order scheduling of one answer's sentences on the Web Audio clock. Sentences are
// decoded as soon as their frame arrives (pre-decoding) and may finish decoding in any order;
// each is scheduled the moment it and every sentence before it are decoded, starting exactly
// where the previous one ends. Pure: the clock is injected, so tests use a fake one.

export interface Slot {
  index: number;
  /** Start time on the audio clock (seconds). */
  at: number;
  duration: number;
}

export class PlaybackQueue {
  private readonly ready = new Map<number, number>();
  private next = 0;
  private end = 0;
  private last: number | null = null;

  /**
   * @param now the audio clock (AudioContext.currentTime)
   * @param lead how far ahead of `now` a sentence starts after an underrun (seconds), so the
   *             first samples are never cut
   */
  constructor(
    private readonly now: () => number,
    private readonly lead = 0.05,
  ) {}

  /** Sentence `index` is decoded and lasts `duration` s: the sentences that can start now, in order. */
  add(index: number, duration: number): Slot[] {
    if (index < this.next || this.ready.has(index)) return []; // duplicate
    this.ready.set(index, Math.max(0, duration));
    const out: Slot[] = [];
    for (let d = this.ready.get(this.next); d !== undefined; d = this.ready.get(this.next)) {
      this.ready.delete(this.next);
      const earliest = this.now() + this.lead;
      const at = this.end >= this.now() && this.next > 0 ? Math.max(this.end, this.now()) : Math.max(this.end, earliest);
      out.push({ index: this.next, at, duration: d });
      this.end = at + d;
      this.next++;
    }
    return out;
  }

  /** The server said how many sentences there are (speech_end). */
  finish(count: number): void {
    this.last = count - 1;
  }

  /** speech_end was seen and every sentence up to the last is scheduled. */
  allScheduled(): boolean {
    return this.last !== null && this.next > this.last;
  }

  /** Every sentence scheduled, and the last one has ended by `now`. */
  done(): boolean {
    return this.last !== null && this.next > this.last && this.now() >= this.end;
  }

  /** When the scheduled audio ends on the clock. */
  get endTime(): number {
    return this.end;
  }

  /** How many sentences are scheduled. */
  get scheduled(): number {
    return this.next;
  }
}
