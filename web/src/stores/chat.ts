import { create } from "zustand";
import type { Route, ServerMsg, Tier } from "../protocol";

export type ApprovalStatus = "pending" | "sent" | "approved" | "denied" | "expired" | "failed";

export type ChatItem =
  | { kind: "user"; id: string; text: string }
  | { kind: "assistant"; id: string; sessionId: string; text: string; streaming: boolean; provider: string | null; route?: Route | null }
  | {
      kind: "tool";
      id: string;
      callId: string;
      tool: string;
      tier: Tier;
      args: unknown;
      progress: number | null;
      log: readonly string[];
      result: { ok: boolean; untrusted: boolean; text: string } | null;
    }
  | {
      kind: "approval";
      id: string;
      approvalId: string;
      sessionId: string;
      tool: string;
      tier: Tier;
      args: unknown;
      argsHash: string;
      summary: string;
      reason: string;
      expiresAt: number;
      status: ApprovalStatus;
      error: string | null;
    }
  | { kind: "notice"; id: string; text: string; level: "info" | "error" };

export interface Costs {
  turns: number;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  unpriced: number;
  lastTotalMs: number | null;
  lastFirstTokenMs: number | null;
  /** From sending the last message to its answer's first audio sounding (measured in the browser). */
  lastFirstAudioMs: number | null;
}

export interface ChatState {
  sessionId: string | null;
  items: readonly ChatItem[];
  /** The route announced for each session's running turn (WS `route`). */
  routes: Readonly<Record<string, Route>>;
  busy: boolean;
  costs: Costs;
  /** `performance.now()` when the last message was sent, until its answer's first audio sounds. */
  sentAt: number | null;
  /** `at`: when the user's message left (default now). */
  addUser: (text: string, at?: number) => void;
  /** The first audio of an answer starts sounding at `at` (`performance.now()` clock). */
  firstAudio: (at: number) => void;
  appendTokens: (batch: ReadonlyMap<string, string>) => void;
  apply: (msg: ServerMsg, now?: number) => void;
  setApprovalStatus: (approvalId: string, status: ApprovalStatus, error?: string | null) => void;
  setSession: (id: string | null) => void;
  loadHistory: (items: ChatItem[]) => void;
  /** Put stored history before whatever arrived while it loaded. */
  prependHistory: (items: ChatItem[]) => void;
  reset: () => void;
}

let seq = 0;
const nextId = (p: string): string => `${p}-${++seq}`;

const emptyCosts: Costs = {
  turns: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, unpriced: 0, lastTotalMs: null, lastFirstTokenMs: null, lastFirstAudioMs: null,
};

function updateWhere(items: readonly ChatItem[], pred: (i: ChatItem) => boolean, f: (i: ChatItem) => ChatItem): readonly ChatItem[] {
  for (let k = items.length - 1; k >= 0; k--) {
    const it = items[k] as ChatItem;
    if (pred(it)) {
      const copy = items.slice();
      copy[k] = f(it);
      return copy;
    }
  }
  return items;
}

function closeStreaming(items: readonly ChatItem[]): readonly ChatItem[] {
  const last = items[items.length - 1];
  if (last?.kind === "assistant" && last.streaming) {
    const copy = items.slice();
    copy[copy.length - 1] = { ...last, streaming: false };
    return copy;
  }
  return items;
}

export const useChat = create<ChatState>()((set, get) => ({
  sessionId: null,
  items: [],
  routes: {},
  busy: false,
  costs: emptyCosts,
  sentAt: null,
  addUser: (text, at = performance.now()) =>
    set((s) => ({
      items: [...closeStreaming(s.items), { kind: "user", id: nextId("u"), text }],
      busy: true,
      sentAt: at,
      costs: s.costs.lastFirstAudioMs == null ? s.costs : { ...s.costs, lastFirstAudioMs: null },
    })),
  firstAudio: (at) =>
    set((s) => (s.sentAt == null ? s : { sentAt: null, costs: { ...s.costs, lastFirstAudioMs: Math.max(0, Math.round(at - s.sentAt)) } })),
  appendTokens: (batch) =>
    set((s) => {
      let items = s.items;
      for (const [sessionId, text] of batch) {
        const last = items[items.length - 1];
        if (last?.kind === "assistant" && last.streaming && last.sessionId === sessionId) {
          const copy = items.slice();
          copy[copy.length - 1] = { ...last, text: last.text + text };
          items = copy;
        } else {
          const route = s.routes[sessionId] ?? null;
          items = [...items, { kind: "assistant", id: nextId("a"), sessionId, text, streaming: true, provider: route?.provider ?? null, route }];
        }
      }
      return { items };
    }),
  apply: (m, now = Date.now()) => {
    const s = get();
    switch (m.type) {
      case "accepted":
        set({ sessionId: m.session_id, busy: true });
        return;
      case "token":
        get().appendTokens(new Map([[m.session_id, m.text]]));
        return;
      case "tool_start":
        set({
          items: [
            ...closeStreaming(s.items),
            { kind: "tool", id: nextId("t"), callId: m.call_id, tool: m.tool, tier: m.tier, args: m.arguments, progress: null, log: [], result: null },
          ],
        });
        return;
      case "tool_progress":
        set({
          items: updateWhere(s.items, (i) => i.kind === "tool" && i.callId === m.call_id, (i) =>
            i.kind === "tool"
              ? { ...i, progress: m.progress, log: m.message ? [...i.log.slice(-49), m.message] : i.log }
              : i,
          ),
        });
        return;
      case "tool_result":
        set({
          items: updateWhere(s.items, (i) => i.kind === "tool" && i.callId === m.call_id, (i) =>
            i.kind === "tool" ? { ...i, result: { ok: m.ok, untrusted: m.untrusted, text: m.text } } : i,
          ),
        });
        return;
      case "approval_required":
        set({
          items: [
            ...closeStreaming(s.items),
            {
              kind: "approval",
              id: nextId("ap"),
              approvalId: m.approval_id,
              sessionId: m.session_id,
              tool: m.tool,
              tier: m.tier,
              args: m.arguments,
              argsHash: m.args_hash,
              summary: m.summary,
              reason: m.reason,
              expiresAt: now + m.expires_in_secs * 1000,
              status: "pending",
              error: null,
            },
          ],
        });
        return;
      case "approval_resolved":
        get().setApprovalStatus(m.approval_id, m.verdict);
        return;
      case "approval_ack":
        if (!m.ok) get().setApprovalStatus(m.approval_id, "failed", m.error ?? "refused");
        return;
      case "notice":
        set({ items: [...closeStreaming(s.items), { kind: "notice", id: nextId("n"), text: m.text, level: "info" }] });
        return;
      case "error":
        set({ items: [...closeStreaming(s.items), { kind: "notice", id: nextId("e"), text: m.message, level: "error" }], busy: false });
        return;
      case "route": {
        const { type: _t, session_id, ...route } = m;
        set({ routes: { ...s.routes, [session_id]: route } });
        return;
      }
      case "done": {
        const c = s.costs;
        const route = m.route ?? s.routes[m.session_id] ?? (m.provider ? { provider: m.provider, model: m.model ?? "", reason: "" } : null);
        const { [m.session_id]: _done, ...routes } = s.routes;
        let items = closeStreaming(s.items);
        if (route) {
          items = updateWhere(items, (i) => i.kind === "assistant" && i.sessionId === m.session_id, (i) =>
            i.kind === "assistant" && (i.provider !== route.provider || i.route?.reason !== route.reason) ? { ...i, provider: route.provider, route } : i,
          );
        }
        set({
          routes,
          items,
          busy: false,
          costs: {
            turns: c.turns + 1,
            inputTokens: c.inputTokens + (m.usage.input_tokens ?? 0),
            outputTokens: c.outputTokens + (m.usage.output_tokens ?? 0),
            costUsd: c.costUsd + (m.cost_usd ?? 0),
            unpriced: c.unpriced + (m.cost_usd == null ? 1 : 0),
            lastTotalMs: m.timing.total_ms ?? null,
            lastFirstTokenMs: m.timing.first_token_ms ?? null,
            lastFirstAudioMs: c.lastFirstAudioMs,
          },
        });
        return;
      }
      default:
        return;
    }
  },
  setApprovalStatus: (approvalId, status, error = null) =>
    set((s) => ({
      items: updateWhere(s.items, (i) => i.kind === "approval" && i.approvalId === approvalId, (i) =>
        i.kind === "approval" ? { ...i, status, error } : i,
      ),
    })),
  setSession: (id) => set({ sessionId: id }),
  loadHistory: (items) => set({ items }),
  prependHistory: (history) =>
    set((s) => {
      const ids = new Set(s.items.map((i) => i.id));
      return { items: [...history.filter((h) => !ids.has(h.id)), ...s.items] };
    }),
  reset: () => set({ sessionId: null, items: [], busy: false, routes: {}, sentAt: null }),
}));
