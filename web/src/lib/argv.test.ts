import { describe, expect, it } from "vitest";
import { ArgvError, LineHistory, splitArgv } from "./argv";

describe("terminal argv splitting (no shell)", () => {
  it("splits words and groups quoted ones without expanding anything", () => {
    expect(splitArgv("  df   -h ")).toEqual(["df", "-h"]);
    expect(splitArgv(`systemctl status "pve proxy" 'a b'`)).toEqual(["systemctl", "status", "pve proxy", "a b"]);
    expect(splitArgv(`echo "say \\"hi\\"" $HOME;rm`)).toEqual(["echo", 'say "hi"', "$HOME;rm"]);
    expect(splitArgv(`x '' y`)).toEqual(["x", "", "y"]);
    expect(splitArgv("")).toEqual([]);
  });

  it("refuses an unclosed quote", () => {
    expect(() => splitArgv(`ls "abc`)).toThrow(ArgvError);
  });
});

describe("terminal history", () => {
  it("walks up and down and returns to the draft", () => {
    const h = new LineHistory();
    h.push("uptime");
    h.push("df -h");
    h.push("df -h");
    expect(h.size).toBe(2);
    expect(h.up("fre")).toBe("df -h");
    expect(h.up("df -h")).toBe("uptime");
    expect(h.up("uptime")).toBe("uptime");
    expect(h.down()).toBe("df -h");
    expect(h.down()).toBe("fre");
  });
});
