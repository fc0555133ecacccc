import type { PendingApproval, StoredMessage } from "./api";
import type { Tier } from "./protocol";
import type { ChatItem } from "./stores/chat";

type Block = { type?: unknown; text?: unknown; id?: unknown; name?: unknown; input?: unknown; tool_use_id?: unknown; content?: unknown; is_error?: unknown };

function blocks(content: unknown): Block[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? content.filter((b): b is Block => typeof b === "object" && b !== null) : [];
}

function resultText(c: unknown): string {
  if (typeof c === "string") return c;
  return blocks(c)
    .map((b) => (typeof b.text === "string" ? b.text : ""))
    .join("");
}

const UNTRUSTED = /<<UNTRUSTED DATA id=/;

/**
 * Stored messages of a session as chat items: user and assistant text, and a tool card for
 * each tool call with its stored result (`tierOf` names the tier; unknown tools count as BLACK).
 */
export function historyItems(sessionId: string, msgs: readonly StoredMessage[], tierOf: (tool: string) => Tier = () => "black"): ChatItem[] {
  const out: ChatItem[] = [];
  const cards = new Map<string, number>();
  for (const m of msgs) {
    const bs = blocks(m.content);
    const text = bs.map((b) => (b.type === "text" && typeof b.text === "string" ? b.text : "")).join("");
    if (m.role === "user") {
      if (text) out.push({ kind: "user", id: `h${m.id}`, text });
      for (const b of bs) {
        if (b.type !== "tool_result" || typeof b.tool_use_id !== "string") continue;
        const at = cards.get(b.tool_use_id);
        const card = at === undefined ? undefined : out[at];
        if (at === undefined || card?.kind !== "tool") continue;
        const rt = resultText(b.content);
        out[at] = { ...card, result: { ok: b.is_error !== true, untrusted: UNTRUSTED.test(rt), text: rt } };
      }
    } else if (m.role === "assistant") {
      if (text) out.push({ kind: "assistant", id: `h${m.id}`, sessionId, text, streaming: false, provider: m.provider ?? null });
      for (const b of bs) {
        if (b.type !== "tool_use" || typeof b.id !== "string" || typeof b.name !== "string") continue;
        cards.set(b.id, out.length);
        out.push({ kind: "tool", id: `h${m.id}-${b.id}`, callId: b.id, tool: b.name, tier: tierOf(b.name), args: b.input ?? {}, progress: null, log: [], result: null });
      }
    }
  }
  return out;
}

/** Approval cards for requests still waiting (GET /api/approvals), e.g. after a reload. */
export function approvalItems(pending: readonly PendingApproval[], now = Date.now()): ChatItem[] {
  return pending.map((a) => ({
    kind: "approval",
    id: `pa-${a.approval_id}`,
    approvalId: a.approval_id,
    sessionId: a.session_id,
    tool: a.tool,
    tier: a.tier,
    args: a.arguments,
    argsHash: a.args_hash,
    summary: `${a.tool} ${JSON.stringify(a.arguments)}`,
    reason: "Still waiting for your decision (restored after a reload).",
    expiresAt: now + a.expires_in_secs * 1000,
    status: "pending",
    error: null,
  }));
}
