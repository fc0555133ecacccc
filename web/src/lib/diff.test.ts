import { describe, expect, it } from "vitest";
import { jsonEqual, reconcileList } from "./diff";

describe("jsonEqual", () => {
  it("compares nested objects and arrays by value", () => {
    expect(jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(jsonEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 3 }] })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });
});

describe("reconcileList", () => {
  const key = (x: { id: string }) => x.id;
  it("returns the previous array when nothing changed", () => {
    const prev = [{ id: "a", v: 1 }, { id: "b", v: 2 }];
    expect(reconcileList(prev, [{ id: "a", v: 1 }, { id: "b", v: 2 }], key)).toBe(prev);
  });
  it("returns a new array when the order changes but keeps the items", () => {
    const prev = [{ id: "a", v: 1 }, { id: "b", v: 2 }];
    const next = reconcileList(prev, [{ id: "b", v: 2 }, { id: "a", v: 1 }], key);
    expect(next).not.toBe(prev);
    expect(next[0]).toBe(prev[1]);
    expect(next[1]).toBe(prev[0]);
  });
  it("drops removed items and takes new objects for changed ones", () => {
    const prev = [{ id: "a", v: 1 }, { id: "b", v: 2 }];
    const changed = { id: "b", v: 3 };
    const next = reconcileList(prev, [changed], key);
    expect(next).toEqual([changed]);
    expect(next[0]).toBe(changed);
  });
});
