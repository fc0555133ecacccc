import { memo, useMemo, useState, type ReactNode } from "react";
import { connection, storedSession } from "../connection";
import { useChat } from "../stores/chat";
import { bytes, duration, gib, pct } from "../format";
import { nodeOnline, useCluster, type Row } from "../stores/cluster";
import { useUi } from "../stores/ui";

function Bar({ label, value, detail }: { label: string; value: number; detail: string }): ReactNode {
  const level = value >= 90 ? "crit" : value >= 75 ? "warn" : "ok";
  return (
    <div className="bar-row">
      <span className="bar-label">{label}</span>
      <div className={`bar ${level}`} role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(value)}>
        <div className="bar-fill" style={{ transform: `scaleX(${Math.max(0, Math.min(100, value)) / 100})` }} />
      </div>
      <span className="bar-value">{detail}</span>
    </div>
  );
}

export const NodeCard = memo(function NodeCard({ node }: { node: Row }): ReactNode {
  const online = nodeOnline(node);
  const name = node.node ?? node.id;
  return (
    <article className={`node-card ${online ? "online" : "offline"}`} data-testid="node-card" aria-label={`node ${name}`}>
      <header>
        <span className={`dot ${online ? "ok" : "bad"}`} aria-hidden="true" />
        <h3>
          <button type="button" className="btn link node-name" onClick={() => useUi.getState().showChart(`node:${name}`)} aria-label={`history of node ${name}`} title="CPU, memory and network history">
            {name}
          </button>
        </h3>
        <span className={`badge ${online ? "ok" : "bad"}`}>{online ? "ONLINE" : (node.status ?? "unknown").toUpperCase()}</span>
      </header>
      {online ? (
        <>
          <Bar label="CPU" value={(node.cpu ?? 0) * 100} detail={`${((node.cpu ?? 0) * 100).toFixed(0)}% of ${node.maxcpu ?? 0}`} />
          <Bar label="RAM" value={pct(node.mem, node.maxmem)} detail={`${gib(node.mem)}/${gib(node.maxmem)} GiB`} />
          <Bar label="DISK" value={pct(node.disk, node.maxdisk)} detail={`${pct(node.disk, node.maxdisk).toFixed(0)}%`} />
          <footer className="muted">
            up {duration(node.uptime)}
            {typeof node.temperature === "number" && <> · {node.temperature.toFixed(0)} °C</>}
          </footer>
        </>
      ) : (
        <p className="offline-note" role="status">
          Node offline — its guests are unreachable until it returns.
        </p>
      )}
    </article>
  );
});

type Filter = "all" | "running" | "stopped";

const GuestRow = memo(function GuestRow({ guest, disabled }: { guest: Row; disabled: boolean }): ReactNode {
  const running = guest.status === "running";
  const act = (tool: string) => {
    if (guest.vmid == null) return;
    useUi.getState().setTab("chat");
    const sid = useChat.getState().sessionId ?? storedSession();
    const msg = { type: "tool" as const, tool, arguments: { vmid: guest.vmid } };
    if (!connection.send(sid ? { ...msg, session_id: sid } : msg)) {
      useUi.getState().pushFeed("alert", `not connected: ${tool} ${guest.vmid} not sent`);
    }
  };
  const who = `${guest.type === "lxc" ? "container" : "VM"} ${guest.vmid ?? ""}`;
  return (
    <li className={`guest ${guest.status ?? ""}`} data-testid="guest-row">
      <span className={`dot ${running ? "ok" : guest.status === "paused" || guest.status === "suspended" ? "warn" : "off"}`} aria-hidden="true" />
      <button
        type="button"
        className="vmid btn link"
        title={`${guest.type === "lxc" ? "container" : "virtual machine"}: show its history`}
        aria-label={`history of ${who}`}
        onClick={() => guest.vmid != null && useUi.getState().showChart(`vmid:${guest.vmid}`)}
      >
        {guest.vmid}
      </button>
      <span className="gname" title={guest.name ?? ""}>
        {guest.name ?? "—"}
        {guest.type === "lxc" && <span className="muted tiny"> CT</span>}
      </span>
      <span className="gnode muted">{guest.node}</span>
      <span className="gstatus">{guest.status}</span>
      <span className="gactions">
        {running ? (
          <button type="button" className="btn small danger" disabled={disabled} onClick={() => act("stop_guest")} aria-label={`stop ${who}`}>
            stop
          </button>
        ) : (
          <button type="button" className="btn small" disabled={disabled} onClick={() => act("start_guest")} aria-label={`start ${who}`}>
            start
          </button>
        )}
      </span>
    </li>
  );
});

export function ClusterColumn(): ReactNode {
  const nodes = useCluster((s) => s.nodes);
  const guests = useCluster((s) => s.guests);
  const storage = useCluster((s) => s.storage);
  const clusters = useCluster((s) => s.clusters);
  const unavailable = useCluster((s) => s.unavailable);
  const source = useCluster((s) => s.source);
  const link = useUi((s) => s.link);
  const [filter, setFilter] = useState<Filter>("all");
  const [query, setQuery] = useState("");
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return guests.filter(
      (g) =>
        !g.template &&
        (filter === "all" || (filter === "running" ? g.status === "running" : g.status !== "running")) &&
        (!q || `${g.vmid ?? ""} ${g.name ?? ""} ${g.node ?? ""} ${g.tags ?? ""}`.toLowerCase().includes(q)),
    );
  }, [guests, filter, query]);
  const running = guests.filter((g) => g.status === "running").length;

  return (
    <section className="col col-cluster panel" id="panel-cluster" tabIndex={-1} aria-labelledby="cluster-title">
      <h2 id="cluster-title" className="panel-title">
        CLUSTER {clusters.map((c) => c.name).join(", ")}
        {clusters.length > 0 && (
          <span className={`badge ${clusters.every((c) => c.quorate !== false) ? "ok" : "bad"}`}>
            {clusters.some((c) => c.quorate === false) ? "NO QUORUM" : clusters.some((c) => c.quorate == null) ? "QUORUM ?" : "QUORATE"}
          </span>
        )}
      </h2>
      {nodes.length === 0 && (
        <p className="muted empty" role="status">
          {unavailable ?? (link === "open" ? "Waiting for the cluster snapshot…" : "Connecting…")}
        </p>
      )}
      {clusters.filter((c) => c.error).map((c) => (
        <p className="error" key={c.name} role="alert">
          {c.name}: {c.error}
        </p>
      ))}
      <div className="nodes">
        {nodes.map((n) => (
          <NodeCard key={`${n.cluster}/${n.id}`} node={n} />
        ))}
      </div>
      {guests.length > 0 && (
        <>
          <h3 className="sub-title">
            GUESTS <span className="muted">{running} running / {guests.length}</span>
          </h3>
          <div className="guest-filters" role="group" aria-label="guest filter">
            {(["all", "running", "stopped"] as const).map((f) => (
              <button key={f} type="button" className={`chip ${filter === f ? "on" : ""}`} aria-pressed={filter === f} onClick={() => setFilter(f)}>
                {f.toUpperCase()}
              </button>
            ))}
            <input className="guest-search" type="search" placeholder="filter…" aria-label="filter guests" value={query} onChange={(e) => setQuery(e.target.value)} />
          </div>
          <ul className="guests" aria-label="guests">
            {shown.map((g) => (
              <GuestRow key={`${g.cluster}/${g.id}`} guest={g} disabled={link !== "open"} />
            ))}
          </ul>
        </>
      )}
      {storage.length > 0 && (
        <>
          <h3 className="sub-title">STORAGE</h3>
          <ul className="storage">
            {storage.map((s) => (
              <li key={`${s.cluster}/${s.id}`}>
                <Bar label={`${s.storage ?? s.id}@${s.node ?? ""}`} value={pct(s.disk, s.maxdisk)} detail={`${bytes(s.disk)} / ${bytes(s.maxdisk)}`} />
              </li>
            ))}
          </ul>
        </>
      )}
      {source === "poll" && <p className="muted tiny">cluster data polled from /api/cluster</p>}
    </section>
  );
}
