import { describe, expect, it } from "vitest";
import { toColumns } from "./rrdSeries";

describe("RRD points to chart columns", () => {
  it("sorts by time, scales CPU and memory to percent and keeps gaps as null", () => {
    const c = toColumns([
      { time: 20, cpu: 0.5, mem: 1, maxmem: 4, netin: 10, netout: 5 },
      { time: 10, cpu: 0.25, mem: 2, maxmem: 4 },
      { time: 30, maxmem: 0 },
    ]);
    expect(c[0]).toEqual([10, 20, 30]);
    expect(c[1]).toEqual([25, 50, null]);
    expect(c[2]).toEqual([50, 25, null]);
    expect(c[3]).toEqual([null, 10, null]);
    expect(c[4]).toEqual([null, 5, null]);
  });
});
