import { memo, useEffect, useState, type ReactNode } from "react";
import { connection } from "../connection";
import { Markdown } from "../lib/markdown";
import { useChat, type ChatItem } from "../stores/chat";
import { PlayButton } from "./Voice";

type Of<K extends ChatItem["kind"]> = Extract<ChatItem, { kind: K }>;

function args(a: unknown): string {
  try {
    return JSON.stringify(a);
  } catch {
    return String(a);
  }
}

export const ToolCard = memo(function ToolCard({ item }: { item: Of<"tool"> }): ReactNode {
  const [open, setOpen] = useState(false);
  const state = item.result ? (item.result.ok ? "ok" : "failed") : "running";
  const last = item.log[item.log.length - 1];
  return (
    <div className={`card tool-card ${state}`} data-testid="tool-card">
      <div className="card-head">
        <span className={`tier tier-${item.tier}`}>{item.tier.toUpperCase()}</span>
        <code className="tool-name">{item.tool}</code>
        <span className="muted args">{args(item.args)}</span>
        <span className={`badge ${state === "ok" ? "ok" : state === "failed" ? "bad" : "warn"}`}>{state}</span>
      </div>
      {!item.result && (
        <div className="progress" role="progressbar" aria-label={`${item.tool} progress`} aria-valuemin={0} aria-valuemax={1} aria-valuenow={item.progress ?? undefined}>
          <div className={`progress-fill ${item.progress == null ? "indeterminate" : ""}`} style={item.progress == null ? undefined : { width: `${Math.min(100, item.progress * 100)}%` }} />
        </div>
      )}
      {last && !item.result && <div className="task-log muted">{last}</div>}
      {item.result && (
        <>
          <button type="button" className="btn link" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
            {open ? "hide result" : "show result"}
            {item.result.untrusted && " (untrusted data)"}
          </button>
          {open && <pre className={`tool-result ${item.result.untrusted ? "untrusted" : ""}`}>{item.result.text}</pre>}
        </>
      )}
    </div>
  );
});

function useCountdown(until: number, active: boolean): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return Math.max(0, Math.ceil((until - now) / 1000));
}

export const ApprovalCard = memo(function ApprovalCard({ item }: { item: Of<"approval"> }): ReactNode {
  const pending = item.status === "pending";
  const left = useCountdown(item.expiresAt, pending);
  const expired = pending && left === 0;
  const decide = (approve: boolean) => {
    const ok = connection.send(
      approve
        ? { type: "approve", approval_id: item.approvalId, session_id: item.sessionId, args_hash: item.argsHash }
        : { type: "deny", approval_id: item.approvalId, session_id: item.sessionId },
    );
    useChat.getState().setApprovalStatus(item.approvalId, ok ? "sent" : "failed", ok ? null : "not connected");
  };
  const verdict =
    item.status === "approved" ? "AUTHORIZED" : item.status === "denied" ? "DENIED" : item.status === "expired" || expired ? "EXPIRED" : item.status === "sent" ? "SENT…" : item.status === "failed" ? "FAILED" : null;
  return (
    <div className={`card approval-card approval-${item.tier}`} role="group" aria-label={`approval for ${item.tool}`} data-testid="approval-card">
      <div className="card-head">
        <span className={`tier tier-${item.tier}`}>{item.tier.toUpperCase()}</span>
        <strong>Authorization required</strong>
        {pending && !expired && (
          <span className="countdown" aria-live="off" aria-label={`${left} seconds left`}>
            {left}s
          </span>
        )}
      </div>
      <p className="summary">{item.summary}</p>
      <p className="muted">{item.reason}</p>
      <code className="muted args">
        {item.tool} {args(item.args)}
      </code>
      {pending && !expired ? (
        <div className="actions">
          <button type="button" className="btn primary" onClick={() => decide(true)}>
            AUTHORIZE
          </button>
          <button type="button" className="btn danger" onClick={() => decide(false)}>
            DENY
          </button>
        </div>
      ) : (
        <p className={`verdict ${item.status}`} role="status">
          {verdict}
          {item.error && ` — ${item.error}`}
        </p>
      )}
    </div>
  );
});

export const MessageView = memo(function MessageView({ item }: { item: ChatItem }): ReactNode {
  switch (item.kind) {
    case "user":
      return (
        <div className="msg user">
          <span className="who">YOU</span>
          <div className="body">{item.text}</div>
        </div>
      );
    case "assistant":
      return (
        <div className={`msg assistant ${item.streaming ? "streaming" : ""}`} data-testid="assistant-msg">
          <span className="who">
            JARVIS
            {item.provider && (
              <span className={`provider badge provider-${item.provider === "anthropic" ? "claude" : "local"}`} title={item.route ? `${item.route.model}: ${item.route.reason}` : undefined} data-testid="provider-badge">
                {item.provider === "anthropic" ? "Claude" : item.provider === "local" ? "local" : item.provider}
              </span>
            )}
            {item.route?.reason && <span className="muted tiny route-reason"> {item.route.reason}</span>}
            {!item.streaming && item.text && <PlayButton id={item.id} text={item.text} />}
          </span>
          <div className="body md">
            <Markdown text={item.text} />
            {item.streaming && <span className="caret" aria-hidden="true" />}
          </div>
        </div>
      );
    case "tool":
      return <ToolCard item={item} />;
    case "approval":
      return <ApprovalCard item={item} />;
    case "notice":
      return (
        <div className={`msg notice ${item.level}`} role={item.level === "error" ? "alert" : undefined}>
          {item.text}
        </div>
      );
  }
});
