import { useEffect, useState, type ReactNode } from "react";
import * as api from "../api";
import { nodeOnline, useCluster } from "../stores/cluster";
import { THEMES, useUi, type Theme } from "../stores/ui";

function Ring({ label, value, sub }: { label: string; value: number; sub: string }): ReactNode {
  const r = 42;
  const c = 2 * Math.PI * r;
  const v = Math.max(0, Math.min(100, value));
  return (
    <figure className="ring" aria-label={`${label} ${v.toFixed(0)} percent`}>
      <svg viewBox="0 0 100 100" aria-hidden="true">
        <circle className="ring-track" cx="50" cy="50" r={r} />
        <circle className="ring-spin" cx="50" cy="50" r={r + 5} />
        <circle className="ring-value" cx="50" cy="50" r={r} strokeDasharray={`${(v / 100) * c} ${c}`} transform="rotate(-90 50 50)" />
      </svg>
      <figcaption>
        <strong>{v.toFixed(0)}%</strong>
        <span>{label}</span>
        <small className="muted">{sub}</small>
      </figcaption>
    </figure>
  );
}

export function Hud(): ReactNode {
  const nodes = useCluster((s) => s.nodes);
  const guests = useCluster((s) => s.guests);
  const clusters = useCluster((s) => s.clusters);
  const online = nodes.filter(nodeOnline);
  const sum = (f: (n: (typeof nodes)[number]) => number) => online.reduce((a, n) => a + f(n), 0);
  const cpuCap = sum((n) => n.maxcpu ?? 0);
  const cpu = cpuCap ? (sum((n) => (n.cpu ?? 0) * (n.maxcpu ?? 0)) / cpuCap) * 100 : 0;
  const memMax = sum((n) => n.maxmem ?? 0);
  const mem = memMax ? (sum((n) => n.mem ?? 0) / memMax) * 100 : 0;
  const diskMax = sum((n) => n.maxdisk ?? 0);
  const disk = diskMax ? (sum((n) => n.disk ?? 0) / diskMax) * 100 : 0;
  const running = guests.filter((g) => g.status === "running").length;
  return (
    <div className="hud">
      <div className="rings">
        <Ring label="CPU" value={cpu} sub={`${cpuCap} cores`} />
        <Ring label="MEMORY" value={mem} sub="cluster" />
        <Ring label="DISK" value={disk} sub="local" />
      </div>
      <dl className="numbers">
        <div>
          <dt>NODES</dt>
          <dd>
            {online.length}/{nodes.length}
          </dd>
        </div>
        <div>
          <dt>GUESTS RUNNING</dt>
          <dd>
            {running}/{guests.length}
          </dd>
        </div>
        <div>
          <dt>QUORUM</dt>
          <dd>{clusters.length === 0 ? "—" : clusters.every((c) => c.quorate) ? "OK" : clusters.some((c) => c.quorate === false) ? "LOST" : "?"}</dd>
        </div>
      </dl>
    </div>
  );
}

export function KillSwitch(): ReactNode {
  const on = useUi((s) => s.killSwitch);
  const err = useUi((s) => s.killSwitchError);
  const set = useUi((s) => s.setKillSwitch);
  const [busy, setBusy] = useState(false);
  async function toggle() {
    if (on === null || busy) return;
    setBusy(true);
    try {
      set(await api.setKillSwitch(!on));
    } catch (e) {
      set(on, e instanceof Error ? e.message : "failed");
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className={`killswitch ${on ? "engaged" : ""}`}>
      <button
        type="button"
        role="switch"
        aria-checked={on === true}
        aria-label="kill switch"
        className="btn kill"
        disabled={on === null || busy}
        onClick={() => void toggle()}
        data-testid="kill-switch"
      >
        {on === null ? "KILL SWITCH …" : on ? "KILL SWITCH ENGAGED" : "KILL SWITCH OFF"}
      </button>
      <p className="muted tiny">{on ? "All autonomous actions are stopped." : "Autonomous actions are allowed."}</p>
      {err && (
        <p className="error tiny" role="alert">
          {err}
        </p>
      )}
    </div>
  );
}

export function HealthPanel(): ReactNode {
  const h = useUi((s) => s.health);
  const err = useUi((s) => s.healthError);
  if (err) return <p className="error">Health unavailable.</p>;
  if (!h) return null;
  const c = h.components;
  return (
    <div className="health">
      <h3 className="sub-title">SYSTEMS</h3>
      <ul className="kv-list">
        <li>
          <span className={`dot ${c?.database?.ok ? "ok" : "bad"}`} aria-hidden="true" /> database {c?.database?.ok ? "ok" : "down"}
        </li>
        {(c?.mcp ?? []).map((m) => (
          <li key={m.name}>
            <span className={`dot ${m.up ? "ok" : "bad"}`} aria-hidden="true" /> mcp {m.name} {m.up ? "up" : "down"}
          </li>
        ))}
        <li>
          <span className={`dot ${c?.llm?.configured ? "ok" : "warn"}`} aria-hidden="true" /> model{" "}
          {c?.llm?.configured ? `${c.llm.provider ?? ""} ${c.llm.model ?? ""}` : "not configured"}
        </li>
      </ul>
    </div>
  );
}

export function ThemePicker(): ReactNode {
  const theme = useUi((s) => s.theme);
  const setTheme = useUi((s) => s.setTheme);
  return (
    <label className="theme-picker">
      <span className="sr-only">Theme</span>
      <select value={theme} onChange={(e) => setTheme(e.target.value as Theme)} aria-label="theme">
        {THEMES.map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Clock(): ReactNode {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const t = setInterval(() => setNow(new Date()), 1000);
    return () => clearInterval(t);
  }, []);
  return <time className="clock">{now.toLocaleTimeString([], { hour12: false })}</time>;
}
