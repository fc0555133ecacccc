import type { StoredMessage } from "./api";
import type { ChatItem } from "./stores/chat";

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b: unknown) =>
      typeof b === "object" && b !== null && (b as { type?: unknown }).type === "text" && typeof (b as { text?: unknown }).text === "string"
        ? (b as { text: string }).text
        : "",
    )
    .join("");
}

/** Stored messages of a session as chat items (text only; tool blocks are not replayed). */
export function historyItems(sessionId: string, msgs: readonly StoredMessage[]): ChatItem[] {
  const out: ChatItem[] = [];
  for (const m of msgs) {
    const text = textOf(m.content);
    if (!text) continue;
    if (m.role === "user") out.push({ kind: "user", id: `h${m.id}`, text });
    else if (m.role === "assistant")
      out.push({ kind: "assistant", id: `h${m.id}`, sessionId, text, streaming: false, provider: m.provider ?? null });
  }
  return out;
}
