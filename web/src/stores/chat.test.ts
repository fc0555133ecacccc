import { beforeEach, describe, expect, it } from "vitest";
import { useChat } from "./chat";

describe("chat store", () => {
  beforeEach(() => {
    useChat.getState().reset();
    useChat.setState({ costs: { turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, unpriced: 0, lastTotalMs: null, lastFirstTokenMs: null, lastFirstAudioMs: null } });
  });

  it("appends a token batch to the streaming answer and keeps earlier messages identical", () => {
    const s = useChat.getState();
    s.addUser("hello");
    const user = useChat.getState().items[0];
    s.appendTokens(new Map([["s1", "Good "]]));
    s.appendTokens(new Map([["s1", "evening"]]));
    const items = useChat.getState().items;
    expect(items).toHaveLength(2);
    expect(items[0]).toBe(user);
    expect(items[1]).toMatchObject({ kind: "assistant", text: "Good evening", streaming: true });
  });

  it("measures from sending a message to its answer's first audio, once per message", () => {
    const s = useChat.getState();
    s.addUser("status?", 1000);
    s.appendTokens(new Map([["s1", "All well, sir."]]));
    s.apply({ type: "done", session_id: "s1", usage: {}, cost_usd: 0, timing: { total_ms: 300, first_token_ms: 120 }, iterations: 1 });
    expect(useChat.getState().costs.lastFirstAudioMs).toBeNull();
    s.firstAudio(1450.4);
    expect(useChat.getState().costs).toMatchObject({ lastTotalMs: 300, lastFirstTokenMs: 120, lastFirstAudioMs: 450 });
    // A replayed or later answer without a new message does not overwrite it.
    s.firstAudio(5000);
    expect(useChat.getState().costs.lastFirstAudioMs).toBe(450);
    // The next message clears it until its own audio sounds.
    s.addUser("and now?", 6000);
    expect(useChat.getState().costs.lastFirstAudioMs).toBeNull();
    s.firstAudio(6200);
    expect(useChat.getState().costs.lastFirstAudioMs).toBe(200);
  });

  it("ends the streaming message on done and adds usage and cost to the totals", () => {
    const s = useChat.getState();
    s.appendTokens(new Map([["s1", "x"]]));
    s.apply({ type: "done", session_id: "s1", usage: { input_tokens: 10, output_tokens: 5 }, cost_usd: 0.002, timing: { total_ms: 120 }, iterations: 1 });
    s.apply({ type: "done", session_id: "s1", usage: {}, cost_usd: null, timing: {}, iterations: 0 });
    const st = useChat.getState();
    expect(st.items[0]).toMatchObject({ streaming: false });
    expect(st.costs).toMatchObject({ turns: 2, inputTokens: 10, outputTokens: 5, costUsd: 0.002, unpriced: 1 });
    expect(st.busy).toBe(false);
  });

  it("tracks a tool card from start through progress to result", () => {
    const s = useChat.getState();
    s.apply({ type: "tool_start", session_id: "s", call_id: "c1", tool: "stop_guest", tier: "red", arguments: { vmid: 101 } });
    s.apply({ type: "tool_progress", session_id: "s", call_id: "c1", progress: 0.5, message: "stopping VM 101" });
    s.apply({ type: "tool_result", session_id: "s", call_id: "c1", tool: "stop_guest", ok: true, untrusted: false, text: "OK" });
    expect(useChat.getState().items[0]).toMatchObject({ kind: "tool", progress: 0.5, log: ["stopping VM 101"], result: { ok: true, text: "OK" } });
  });

  it("records approval verdicts and refused acks on the matching card", () => {
    const s = useChat.getState();
    const base = { type: "approval_required" as const, session_id: "s", call_id: "c", tool: "stop_guest", tier: "red" as const, arguments: {}, args_hash: "h", summary: "stop VM 1", reason: "RED", expires_in_secs: 60 };
    s.apply({ ...base, approval_id: "a1" }, 1000);
    s.apply({ ...base, approval_id: "a2" }, 1000);
    s.apply({ type: "approval_resolved", session_id: "s", approval_id: "a1", verdict: "approved" });
    s.apply({ type: "approval_ack", approval_id: "a2", ok: false, error: "already resolved" });
    const [a1, a2] = useChat.getState().items;
    expect(a1).toMatchObject({ status: "approved", expiresAt: 61_000 });
    expect(a2).toMatchObject({ status: "failed", error: "already resolved" });
  });
});
