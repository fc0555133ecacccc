// Panels for the intelligence and monitor backends (costs, memory, events, autonomy). Each one
// renders a clear "not available" state when the agent host answers 404.
import { memo, useCallback, useEffect, useState, type SyntheticEvent, type ReactNode } from "react";
import * as api from "../api";
import { usd } from "../format";
import { AUTONOMY } from "../lib/monitor";
import type { Memory, MonitorEvent } from "../protocol";
import { useChat } from "../stores/chat";
import { load, useIntel } from "../stores/intel";
import { useUi, type FeedEntry } from "../stores/ui";
import { Explain } from "./Monitor";
import { Unavailable } from "./Unavailable";

export { Unavailable };


/** Top bar: the autonomy level and the number of active alerts; both open the RULES view. */
export function AutonomyBadge(): ReactNode {
  const a = useIntel((s) => s.autonomy);
  const alerts = useIntel((s) => (s.monitor && s.monitor !== "missing" ? s.monitor.active.length : 0));
  if (a === null) return null;
  const open = () => useUi.getState().setTab("rules");
  if (a === "missing")
    return (
      <button type="button" className="badge muted badge-btn" title="this agent host has no monitor (GET /api/monitor 404)" onClick={open} data-testid="autonomy">
        AUTONOMY n/a
      </button>
    );
  return (
    <>
      <button
        type="button"
        className={`badge badge-btn ${a >= 3 ? "warn" : "ok"}`}
        title={`${AUTONOMY[a] ?? ""} — open the monitor rules`}
        aria-label={`autonomy level ${a} (${AUTONOMY[a] ?? ""}): open the monitor rules`}
        onClick={open}
        data-testid="autonomy"
      >
        AUTONOMY L{a}
      </button>
      {alerts > 0 && (
        <button type="button" className="badge badge-btn bad" onClick={open} aria-label={`${alerts} active alert${alerts === 1 ? "" : "s"}: open the monitor rules`} data-testid="alert-count">
          {alerts} ALERT{alerts === 1 ? "" : "S"}
        </button>
      )}
    </>
  );
}

export function CostsPanel(): ReactNode {
  const summary = useIntel((s) => s.costs);
  const local = useChat((s) => s.costs);
  return (
    <div className="costs" aria-label="costs">
      <h3 className="sub-title">COSTS</h3>
      {summary && summary !== "missing" ? (
        <>
          <dl className="kv" data-testid="cost-summary">
            <dt>today</dt>
            <dd>
              {usd(summary.today.usd)} · {summary.today.requests} req
            </dd>
            <dt>week / month</dt>
            <dd>
              {usd(summary.week.usd)} / {usd(summary.month.usd)}
            </dd>
            <dt>budget</dt>
            <dd className={summary.budget.state === "ok" ? "" : summary.budget.state === "warn" ? "warn-text" : "error"}>
              {summary.budget.daily_usd == null ? "no daily limit" : `${usd(summary.budget.daily_used)} of ${usd(summary.budget.daily_usd)}/day`}
              {summary.budget.state !== "ok" && ` (${summary.budget.state.toUpperCase()})`}
            </dd>
            <dt>saved by local</dt>
            <dd>{usd(summary.saved_usd)}</dd>
          </dl>
          {summary.by_provider.length > 0 && (
            <ul className="kv-list tiny">
              {summary.by_provider.map((p) => (
                <li key={`${p.provider}/${p.model}`}>
                  {p.provider} {p.model}: {p.requests} req, {usd(p.usd)}
                </li>
              ))}
            </ul>
          )}
        </>
      ) : (
        summary === "missing" && <Unavailable what="Cost history (GET /api/costs) is" />
      )}
      <dl className="kv">
        <dt>this session</dt>
        <dd data-testid="cost-turns">{local.turns}</dd>
        <dt>tokens in / out</dt>
        <dd data-testid="cost-tokens">
          {local.inputTokens} / {local.outputTokens}
        </dd>
        <dt>cost</dt>
        <dd>
          {usd(local.costUsd)}
          {local.unpriced > 0 && <span className="muted"> (+{local.unpriced} unpriced)</span>}
        </dd>
        <dt>last turn</dt>
        <dd data-testid="last-turn">
          {local.lastTotalMs == null ? "—" : `${local.lastTotalMs} ms${local.lastFirstTokenMs != null ? `, first token ${local.lastFirstTokenMs} ms` : ""}`}
          {local.lastFirstAudioMs != null && `, first audio ${local.lastFirstAudioMs} ms`}
        </dd>
      </dl>
    </div>
  );
}

const MemoryRow = memo(function MemoryRow({ m, onChange }: { m: Memory; onChange: () => void }): ReactNode {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(m.text);
  const [err, setErr] = useState<string | null>(null);
  const act = async (f: () => Promise<void>) => {
    setErr(null);
    try {
      await f();
      setEditing(false);
      onChange();
    } catch (e) {
      setErr(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <li className="memory" data-testid="memory-row">
      <span className={`badge tier-${m.tier}`}>{m.tier}</span> <span className="muted tiny">{m.kind}</span>
      {editing ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void act(() => api.editMemory(m.id, { text }));
          }}
        >
          <label className="sr-only" htmlFor={`mem-${m.id}`}>
            memory text
          </label>
          <textarea id={`mem-${m.id}`} value={text} onChange={(e) => setText(e.target.value)} rows={2} />
          <button type="submit" className="btn small">
            save
          </button>
          <button type="button" className="btn small" onClick={() => setEditing(false)}>
            cancel
          </button>
        </form>
      ) : (
        <p className="memory-text">{m.text}</p>
      )}
      <span className="muted tiny">
        {m.source} · {new Date(m.created_at).toLocaleString()}
      </span>{" "}
      {!editing && (
        <>
          <button type="button" className="btn link tiny" onClick={() => setEditing(true)} aria-label={`edit memory ${m.id}`}>
            edit
          </button>{" "}
          <button type="button" className="btn link tiny" onClick={() => void act(() => api.deleteMemory(m.id))} aria-label={`delete memory ${m.id}`}>
            delete
          </button>
        </>
      )}
      {err && <span className="error tiny"> {err}</span>}
    </li>
  );
});

export function MemoryPanel(): ReactNode {
  const [list, setList] = useState<Memory[] | null | "missing">(null);
  const [q, setQ] = useState("");
  const [tier, setTier] = useState<api.MemoryTier | "">("");
  const [add, setAdd] = useState("");
  const [err, setErr] = useState<string | null>(null);
  const refresh = useCallback(() => {
    void load(() => api.memories({ tier, q }), (v) => setList(v === null ? [] : v));
  }, [tier, q]);
  useEffect(() => {
    const t = setTimeout(refresh, 250);
    return () => clearTimeout(t);
  }, [refresh]);
  async function onAdd(e: SyntheticEvent) {
    e.preventDefault();
    if (!add.trim()) return;
    try {
      await api.addMemory(add.trim(), "fact");
      setAdd("");
      refresh();
    } catch (x) {
      setErr(x instanceof Error ? x.message : String(x));
    }
  }
  return (
    <div className="memory-panel" aria-label="memory">
      <h3 className="sub-title">MEMORY</h3>
      {list === "missing" ? (
        <Unavailable what="Memory (GET /api/memory) is" />
      ) : (
        <>
          <div className="memory-search">
            <input type="search" aria-label="search memories" placeholder="search…" value={q} onChange={(e) => setQ(e.target.value)} />
            <select aria-label="memory tier" value={tier} onChange={(e) => setTier(e.target.value as api.MemoryTier | "")}>
              <option value="">all tiers</option>
              <option value="conversation">conversation</option>
              <option value="episodic">episodic</option>
              <option value="semantic">semantic</option>
            </select>
          </div>
          {list === null ? (
            <p className="muted tiny">loading…</p>
          ) : list.length === 0 ? (
            <p className="muted tiny">No memories{q ? " match" : " yet"}.</p>
          ) : (
            <ul className="memory-list">
              {list.map((m) => (
                <MemoryRow key={m.id} m={m} onChange={refresh} />
              ))}
            </ul>
          )}
          <form className="memory-add" onSubmit={(e) => void onAdd(e)}>
            <input aria-label="new memory" placeholder="remember a fact…" value={add} onChange={(e) => setAdd(e.target.value)} />
            <button type="submit" className="btn small" disabled={!add.trim()}>
              add
            </button>
          </form>
          {err && <p className="error tiny">{err}</p>}
        </>
      )}
    </div>
  );
}

type FeedFilter = api.EventFilter;

interface Line {
  key: string;
  at: number;
  level: "info" | "alert" | "auto";
  text: string;
  detail?: string;
  /** Events about a condition on a resource can be explained (GET /api/monitor/explain). */
  why?: { condition: string; resource: string };
}

export function eventLine(e: MonitorEvent): Line {
  const alert = e.kind === "alert" || e.kind === "escalation" || e.severity !== "info";
  return {
    key: `e${e.id}`,
    at: Date.parse(e.ts) || 0,
    level: e.auto ? "auto" : alert ? "alert" : "info",
    text: `${e.title}${e.resource ? ` · ${e.resource}` : ""}`,
    detail: e.detail,
    ...(e.condition && e.resource ? { why: { condition: e.condition, resource: e.resource } } : {}),
  };
}

/** The FEED filter: AUTO = done by the monitor on its own; ALERTS = alerts, escalations, warnings. */
export function filterEvents(events: readonly MonitorEvent[], f: FeedFilter): MonitorEvent[] {
  return events.filter((e) => f === "all" || (f === "auto" ? e.auto : e.kind === "alert" || e.kind === "escalation" || e.severity !== "info"));
}

function localLine(e: FeedEntry): Line {
  return { key: `l${e.id}`, at: e.at, level: e.level, text: e.text };
}

export function Feed(): ReactNode {
  const local = useUi((s) => s.feed);
  const events = useIntel((s) => s.events);
  const [f, setF] = useState<FeedFilter>("all");
  const [open, setOpen] = useState<ReadonlySet<string>>(() => new Set());
  const toggle = (key: string) =>
    setOpen((o) => {
      const n = new Set(o);
      if (!n.delete(key)) n.add(key);
      return n;
    });
  const server = Array.isArray(events) ? filterEvents(events, f).map(eventLine) : [];
  const mine = local.filter((e) => f === "all" || (f === "auto" ? e.level === "auto" : e.level === "alert")).map(localLine);
  const shown = [...server, ...mine].sort((a, b) => b.at - a.at).slice(0, 300);
  return (
    <div className="feed">
      <div role="group" aria-label="feed filter" className="guest-filters">
        {(["all", "auto", "alerts"] as const).map((k) => (
          <button key={k} type="button" className={`chip ${f === k ? "on" : ""}`} aria-pressed={f === k} onClick={() => setF(k)}>
            {k.toUpperCase()}
          </button>
        ))}
      </div>
      {events === "missing" && <Unavailable what="Monitor events (GET /api/events) are" />}
      {shown.length === 0 ? (
        <p className="muted empty">No events yet.</p>
      ) : (
        <ol className="feed-list" data-testid="feed-list">
          {shown.map((e) => (
            <li key={e.key} className={`feed-${e.level}`}>
              <time className="muted">{new Date(e.at).toLocaleTimeString()}</time> {e.level === "auto" && <span className="badge">AUTO</span>} {e.text}
              {e.why && (
                <>
                  {" "}
                  <button
                    type="button"
                    className="btn link tiny"
                    aria-expanded={open.has(e.key)}
                    aria-label={`why? ${e.why.condition} on ${e.why.resource}`}
                    onClick={() => toggle(e.key)}
                  >
                    Why?
                  </button>
                </>
              )}
              {e.detail && <div className="muted tiny">{e.detail}</div>}
              {e.why && open.has(e.key) && <Explain condition={e.why.condition} resource={e.why.resource} />}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
