import { lazy, Suspense, useCallback, useEffect, type ReactNode } from "react";
import * as api from "./api";
import { Chat } from "./components/Chat";
import { ClusterColumn } from "./components/Cluster";
import { AutonomyBadge, CostsPanel, Feed, MemoryPanel } from "./components/Intel";
import { Login } from "./components/Login";
import { MonitorView } from "./components/Monitor";
import { focusPanel, Overlays } from "./components/Overlays";
import { Clock, HealthPanel, Hud, KillSwitch, ThemePicker } from "./components/Panels";
import { TerminalPanel } from "./components/Terminal";
import { VoicePanel } from "./components/Voice";
import { connection, storedSession, useConnection } from "./connection";
import { approvalItems, historyItems } from "./history";
import type { Tier } from "./protocol";
import { useChat } from "./stores/chat";
import { useCluster } from "./stores/cluster";
import { loadIntel } from "./stores/intel";
import { useUi, type Panel, type Tab } from "./stores/ui";

const RrdPanel = lazy(() => import("./components/Rrd"));

const PANELS: Panel[] = ["cluster", "center", "right"];

function useHotkeys(): void {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      const ui = useUi.getState();
      if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "k") {
        e.preventDefault();
        ui.setOverlay(ui.overlay === "palette" ? null : "palette");
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey || ui.overlay) return;
      if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName) || t.closest(".xterm"))) return;
      const i = ["1", "2", "3"].indexOf(e.key);
      if (i >= 0) focusPanel(PANELS[i] as Panel);
      else if (e.key === "m") ui.cycleMode();
      else if (e.key === "t") {
        e.preventDefault();
        ui.focusTerminal();
      } else if (e.key === "?") ui.setOverlay("help");
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
}

function Dashboard(): ReactNode {
  useConnection();
  useHotkeys();
  const tab = useUi((s) => s.tab);
  const setTab = useUi((s) => s.setTab);
  const panel = useUi((s) => s.panel);
  const setPanel = useUi((s) => s.setPanel);
  const link = useUi((s) => s.link);
  const mode = useUi((s) => s.mode);
  const cycleMode = useUi((s) => s.cycleMode);
  const killOn = useUi((s) => s.killSwitch);
  const nodes = useCluster((s) => s.nodes);
  const offline = nodes.filter((n) => n.status !== "online");

  useEffect(() => {
    let alive = true;
    const load = async () => {
      try {
        const h = await api.health();
        if (alive) useUi.getState().setHealth(h, false);
      } catch {
        if (alive) useUi.getState().setHealth(null, true);
      }
    };
    void load();
    const t = setInterval(() => void load(), 15_000);
    api.getKillSwitch().then(
      (on) => useUi.getState().setKillSwitch(on),
      () => useUi.getState().setKillSwitch(true, "kill switch state unreadable — counts as ON"),
    );
    loadIntel();
    const sid = storedSession();
    if (useChat.getState().items.length === 0) {
      if (sid) useChat.getState().setSession(sid);
      // Tool tiers for the rebuilt tool cards; never hold the history back for long.
      const tiers = Promise.race([
        api.getJson<{ tools: { name: string; tier: Tier }[] }>("/api/tools").then(
          (r) => new Map(r.tools.map((t) => [t.name, t.tier])),
          () => new Map<string, Tier>(),
        ),
        new Promise<Map<string, Tier>>((res) => setTimeout(() => res(new Map()), 1500)),
      ]);
      const msgs = sid ? api.sessionMessages(sid).catch(() => []) : Promise.resolve([]);
      const pending = api.approvals().catch(() => []);
      void Promise.all([tiers, msgs, pending]).then(([tierMap, m, p]) => {
        const items = historyItems(sid ?? "", m, (t) => tierMap.get(t) ?? "black");
        const live = new Set(useChat.getState().items.flatMap((i) => (i.kind === "approval" ? [i.approvalId] : [])));
        useChat.getState().prependHistory([...items, ...approvalItems(p.filter((a) => !live.has(a.approval_id)))]);
      });
    }
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, []);

  const onLogout = useCallback(() => {
    connection.stop();
    void api.logout().finally(() => {
      useChat.getState().reset();
      useUi.getState().setAuth("login", "Logged out.");
    });
  }, []);

  const tabs: { id: Tab; label: string }[] = [
    { id: "hud", label: "HUD" },
    { id: "feed", label: "FEED" },
    { id: "rules", label: "RULES" },
    { id: "chat", label: "CHAT" },
  ];

  return (
    <div className={`app panel-${panel}`}>
      <a href="#chat-input" className="skip">
        Skip to chat
      </a>
      <header className="topbar">
        <span className="brand">J.A.R.V.I.S.</span>
        <span className={`link link-${link}`} role="status" data-testid="link-state">
          <span className="dot" aria-hidden="true" />
          {link === "open" ? "LINKED" : link === "unreachable" ? "AGENT HOST UNREACHABLE" : link === "reconnecting" ? "RECONNECTING…" : "CONNECTING…"}
        </span>
        {killOn && <span className="badge bad">KILL SWITCH</span>}
        <AutonomyBadge />
        <span className="spacer" />
        <button type="button" className="btn small" onClick={() => useUi.getState().setOverlay("palette")} aria-label="command palette (Ctrl+K)">
          ⌘K
        </button>
        <button type="button" className="btn small" onClick={() => useUi.getState().setOverlay("help")} aria-label="keyboard shortcuts (?)">
          ?
        </button>
        <Clock />
        <button type="button" className="btn small" onClick={cycleMode} aria-label={`visual mode ${mode}, press to change`}>
          {mode.toUpperCase()}
        </button>
        <ThemePicker />
        <button type="button" className="btn small" onClick={onLogout}>
          Log out
        </button>
      </header>
      {link === "unreachable" && (
        <p className="banner bad" role="alert">
          The agent host is unreachable — retrying. Data shown may be stale.
        </p>
      )}
      {offline.length > 0 && (
        <p className="banner warn" role="status" data-testid="offline-banner">
          {offline.length === 1 ? "Cluster node" : "Cluster nodes"} offline: {offline.map((n) => n.node ?? n.id).join(", ")}
        </p>
      )}
      <div className="columns">
        <ClusterColumn />
        <section className="col col-center panel" id="panel-center" tabIndex={-1} aria-label="center">
          <div role="tablist" aria-label="views" className="tabs">
            {tabs.map((t) => (
              <button
                key={t.id}
                role="tab"
                type="button"
                id={`tab-${t.id}`}
                aria-selected={tab === t.id}
                aria-controls={`tabpanel-${t.id}`}
                className={`tab ${tab === t.id ? "on" : ""}`}
                onClick={() => setTab(t.id)}
              >
                {t.label}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`tabpanel-${tab}`} aria-labelledby={`tab-${tab}`} className="tabpanel">
            {tab === "hud" ? (
              <>
                <Hud />
                <Suspense fallback={<p className="muted tiny">loading charts…</p>}>
                  <RrdPanel />
                </Suspense>
              </>
            ) : tab === "feed" ? (
              <Feed />
            ) : tab === "rules" ? (
              <MonitorView />
            ) : (
              <Chat />
            )}
          </div>
        </section>
        <aside className="col col-right panel" id="panel-right" tabIndex={-1} aria-label="controls">
          <KillSwitch />
          <TerminalPanel />
          <VoicePanel />
          <CostsPanel />
          <MemoryPanel />
          <HealthPanel />
        </aside>
      </div>
      <Overlays />
      <nav className="bottom-nav" aria-label="panels">
        {(
          [
            ["cluster", "CLUSTER"],
            ["center", tab.toUpperCase()],
            ["right", "CONTROL"],
          ] as const
        ).map(([p, l]) => (
          <button key={p} type="button" aria-pressed={panel === p} className={panel === p ? "on" : ""} onClick={() => setPanel(p)}>
            {l}
          </button>
        ))}
      </nav>
    </div>
  );
}

function Unreachable({ retry }: { retry: () => void }): ReactNode {
  return (
    <main className="login">
      <div className="login-box panel" role="alert">
        <h1 className="brand">J.A.R.V.I.S.</h1>
        <p className="error">The agent host is unreachable.</p>
        <button type="button" className="btn primary" onClick={retry}>
          Retry
        </button>
      </div>
    </main>
  );
}

export function App(): ReactNode {
  const auth = useUi((s) => s.auth);
  const link = useUi((s) => s.link);
  const theme = useUi((s) => s.theme);
  const mode = useUi((s) => s.mode);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    document.documentElement.dataset.mode = mode;
  }, [theme, mode]);

  const check = useCallback(() => {
    useUi.getState().setLink("connecting");
    api.me().then(
      (ok) => useUi.getState().setAuth(ok ? "in" : "login"),
      () => useUi.getState().setLink("unreachable"),
    );
  }, []);
  useEffect(check, [check]);

  if (auth === "checking") return link === "unreachable" ? <Unreachable retry={check} /> : <p className="muted boot">Connecting…</p>;
  if (auth === "login") return <Login />;
  return <Dashboard />;
}
