import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useLayoutEffect, useRef, useState, type SyntheticEvent, type KeyboardEvent, type ReactNode } from "react";
import { connection, storedSession } from "../connection";
import { useChat } from "../stores/chat";
import { useUi } from "../stores/ui";
import { MessageView } from "./Cards";

export function Chat(): ReactNode {
  const items = useChat((s) => s.items);
  const busy = useChat((s) => s.busy);
  const link = useUi((s) => s.link);
  const llm = useUi((s) => s.health?.components?.llm);
  const scrollRef = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const [text, setText] = useState("");

  const v = useVirtualizer({
    count: items.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 72,
    overscan: 8,
    getItemKey: (i) => items[i]?.id ?? i,
  });

  const last = items[items.length - 1];
  const lastSize = last ? (last.kind === "assistant" ? last.text.length : last.kind) : 0;
  useLayoutEffect(() => {
    if (atBottom.current && items.length > 0) v.scrollToIndex(items.length - 1, { align: "end" });
  }, [items.length, lastSize, v]);

  useEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const onScroll = () => {
      atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    };
    el.addEventListener("scroll", onScroll, { passive: true });
    return () => el.removeEventListener("scroll", onScroll);
  }, []);

  function send(e?: SyntheticEvent) {
    e?.preventDefault();
    const t = text.trim();
    if (!t) return;
    const sid = useChat.getState().sessionId ?? storedSession();
    if (!connection.send(sid ? { type: "send", text: t, session_id: sid } : { type: "send", text: t })) return;
    atBottom.current = true;
    useChat.getState().addUser(t);
    setText("");
  }

  function onKey(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  }

  return (
    <div className="chat">
      {llm && !llm.configured && (
        <p className="banner warn" role="status" data-testid="no-model">
          No model configured — answers need <code>ANTHROPIC_API_KEY</code> or a local endpoint. The cluster view, tools and approvals work.
        </p>
      )}
      <div className="chat-scroll" ref={scrollRef} role="log" aria-label="conversation" aria-live="polite" tabIndex={0}>
        {items.length === 0 && <p className="muted empty">Ask Jarvis about the cluster — e.g. “which guests use the most memory?”</p>}
        <div style={{ height: v.getTotalSize(), position: "relative", width: "100%" }}>
          {v.getVirtualItems().map((row) => {
            const it = items[row.index];
            if (!it) return null;
            return (
              <div key={row.key} data-index={row.index} ref={v.measureElement} className="vrow" style={{ transform: `translateY(${row.start}px)` }}>
                <MessageView item={it} />
              </div>
            );
          })}
        </div>
      </div>
      <form className="composer" onSubmit={send}>
        <label htmlFor="chat-input" className="sr-only">
          Message
        </label>
        <textarea
          id="chat-input"
          rows={1}
          placeholder={link === "open" ? "Ask Jarvis… (Enter sends, Shift+Enter new line)" : "Not connected…"}
          value={text}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKey}
        />
        <button type="submit" className="btn primary" disabled={link !== "open" || !text.trim()}>
          Send
        </button>
        <button type="button" className="btn danger" disabled={!busy} onClick={() => connection.send({ type: "cancel" })}>
          Stop
        </button>
      </form>
    </div>
  );
}
