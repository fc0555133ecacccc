import { describe, expect, it } from "vitest";
import { filterCommands, score, type Command } from "./commands";

const cmd = (label: string): Command => ({ id: label, label, run: () => undefined });

describe("command palette filter", () => {
  it("prefers substring matches, then subsequences, and drops non-matches", () => {
    expect(score("Toggle kill switch", "kill")).toBe(7);
    expect(score("Toggle kill switch", "tks")).toBeGreaterThan(100);
    expect(score("Toggle kill switch", "xyz")).toBe(-1);
    const list = [cmd("Theme: amber"), cmd("Open terminal"), cmd("Go to chat")];
    expect(filterCommands(list, "term").map((c) => c.label)).toEqual(["Open terminal"]);
    expect(filterCommands(list, "").length).toBe(3);
    expect(filterCommands(list, "gtc").map((c) => c.label)).toEqual(["Go to chat"]);
  });
});
