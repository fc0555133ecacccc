import { describe, expect, it } from "vitest";
import { PlaybackQueue } from "./queue";

function fakeClock(t = 0) {
  const c = { t, now: () => c.t };
  return c;
}

describe("PlaybackQueue (gapless scheduling on a fake audio clock)", () => {
  it("starts the first sentence after the lead and the next one exactly where it ends", () => {
    const clock = fakeClock(10);
    const q = new PlaybackQueue(clock.now, 0.05);
    expect(q.add(0, 1.5)).toEqual([{ index: 0, at: 10.05, duration: 1.5 }]);
    clock.t = 10.5; // still playing sentence 0
    expect(q.add(1, 2)).toEqual([{ index: 1, at: 11.55, duration: 2 }]);
    expect(q.endTime).toBeCloseTo(13.55);
  });

  it("holds a sentence decoded early until the ones before it are ready, then schedules them back to back", () => {
    const clock = fakeClock(0);
    const q = new PlaybackQueue(clock.now, 0.1);
    expect(q.add(2, 1)).toEqual([]);
    expect(q.add(1, 1)).toEqual([]);
    const slots = q.add(0, 1);
    expect(slots.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(slots.map((s) => s.at)).toEqual([0.1, 1.1, 2.1]);
  });

  it("after an underrun the next sentence starts at now + lead, not in the past", () => {
    const clock = fakeClock(0);
    const q = new PlaybackQueue(clock.now, 0.05);
    q.add(0, 1);
    clock.t = 5; // sentence 1 took long to synthesise
    expect(q.add(1, 1)).toEqual([{ index: 1, at: 5.05, duration: 1 }]);
  });

  it("ignores duplicates and knows when the last sentence has ended", () => {
    const clock = fakeClock(0);
    const q = new PlaybackQueue(clock.now, 0);
    q.add(0, 1);
    expect(q.add(0, 1)).toEqual([]);
    q.add(1, 1);
    q.finish(2);
    clock.t = 1.5;
    expect(q.done()).toBe(false);
    clock.t = 2;
    expect(q.done()).toBe(true);
  });

  it("is not done before speech_end even when everything received has played", () => {
    const clock = fakeClock(0);
    const q = new PlaybackQueue(clock.now, 0);
    q.add(0, 1);
    clock.t = 9;
    expect(q.done()).toBe(false);
    q.finish(3);
    expect(q.done()).toBe(false);
  });
});
