import { describe, expect, it } from "vitest";
import { approvalItems, historyItems } from "./history";

describe("chat history from stored messages", () => {
  it("rebuilds text and tool cards with their results and tiers", () => {
    const items = historyItems(
      "s1",
      [
        { id: 1, role: "user", content: "stop vm 101" },
        { id: 2, role: "assistant", provider: "anthropic", content: [{ type: "text", text: "On it." }, { type: "tool_use", id: "tu1", name: "stop_guest", input: { vmid: 101 } }] },
        { id: 3, role: "user", content: [{ type: "tool_result", tool_use_id: "tu1", content: "OK", is_error: false }] },
        { id: 4, role: "assistant", content: [{ type: "tool_use", id: "tu2", name: "mystery", input: {} }] },
        { id: 5, role: "user", content: [{ type: "tool_result", tool_use_id: "tu2", content: [{ type: "text", text: "boom" }], is_error: true }] },
        { id: 6, role: "assistant", content: [{ type: "text", text: "Done, sir." }] },
      ],
      (t) => (t === "stop_guest" ? "red" : "black"),
    );
    expect(items.map((i) => i.kind)).toEqual(["user", "assistant", "tool", "tool", "assistant"]);
    expect(items[1]).toMatchObject({ provider: "anthropic", text: "On it." });
    expect(items[2]).toMatchObject({ tool: "stop_guest", tier: "red", args: { vmid: 101 }, result: { ok: true, text: "OK" } });
    expect(items[3]).toMatchObject({ tool: "mystery", tier: "black", result: { ok: false, text: "boom" } });
  });

  it("restores pending approvals as live cards", () => {
    const [a] = approvalItems([{ approval_id: "a1", session_id: "s", tool: "stop_guest", arguments: { vmid: 1 }, args_hash: "h", tier: "red", expires_in_secs: 30 }], 1000);
    expect(a).toMatchObject({ kind: "approval", status: "pending", expiresAt: 31_000, argsHash: "h" });
  });
});
