import { describe, expect, it } from "vitest";
import { FrameBatcher } from "./frameBatcher";

function manualFrames() {
  const queue: (() => void)[] = [];
  return {
    schedule: (cb: () => void) => void queue.push(cb),
    runFrame: () => queue.splice(0).forEach((cb) => cb()),
    pending: () => queue.length,
  };
}

describe("FrameBatcher: streaming tokens are committed once per animation frame", () => {
  it("commits a hundred tokens that arrive within one frame as a single batch", () => {
    const f = manualFrames();
    const commits: string[] = [];
    const b = new FrameBatcher((batch) => commits.push(batch.get("s1") ?? ""), f.schedule);
    for (let i = 0; i < 100; i++) b.push("s1", `${i},`);
    expect(commits).toHaveLength(0);
    expect(f.pending()).toBe(1);
    f.runFrame();
    expect(commits).toHaveLength(1);
    expect(commits[0]?.split(",").length).toBe(101);
  });

  it("schedules a new frame for tokens that arrive after a commit", () => {
    const f = manualFrames();
    let n = 0;
    const b = new FrameBatcher(() => n++, f.schedule);
    b.push("s", "a");
    f.runFrame();
    b.push("s", "b");
    f.runFrame();
    expect(n).toBe(2);
  });

  it("flush commits pending text immediately and the scheduled frame then commits nothing", () => {
    const f = manualFrames();
    const seen: string[] = [];
    const b = new FrameBatcher((batch) => seen.push([...batch.values()].join("|")), f.schedule);
    b.push("s", "he");
    b.push("s", "llo");
    b.flush();
    f.runFrame();
    expect(seen).toEqual(["hello"]);
  });

  it("keeps sessions apart within one batch", () => {
    const f = manualFrames();
    let last: ReadonlyMap<string, string> = new Map();
    const b = new FrameBatcher((batch) => (last = batch), f.schedule);
    b.push("a", "1");
    b.push("b", "2");
    b.push("a", "3");
    f.runFrame();
    expect([...last.entries()]).toEqual([["a", "13"], ["b", "2"]]);
  });
});
