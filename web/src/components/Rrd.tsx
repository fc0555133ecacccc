// RRD history chart (uPlot) for a node or a guest, hour … year, from GET /api/rrd.
// Loaded lazily: uPlot is not part of the initial bundle.
import { useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import * as api from "../api";
import { bytes } from "../format";
import { toColumns } from "../lib/rrdSeries";
import { useCluster } from "../stores/cluster";
import { useUi } from "../stores/ui";

type State = { kind: "loading" } | { kind: "error"; text: string } | { kind: "ok"; points: number };

function accent(): string {
  return getComputedStyle(document.documentElement).getPropertyValue("--accent").trim() || "#35d7ff";
}

export default function RrdPanel(): ReactNode {
  const nodes = useCluster((s) => s.nodes);
  const guests = useCluster((s) => s.guests);
  const target = useUi((s) => s.chart);
  const setTarget = useUi((s) => s.showChart);
  const [tf, setTf] = useState<api.Timeframe>("hour");
  const [state, setState] = useState<State>({ kind: "loading" });
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  const options = useMemo(
    () => [
      ...nodes.map((n) => ({ value: `node:${n.node ?? ""}`, label: `node ${n.node ?? n.id}` })),
      ...guests.filter((g) => g.vmid != null).map((g) => ({ value: `vmid:${g.vmid}`, label: `${g.type === "lxc" ? "CT" : "VM"} ${g.vmid} ${g.name ?? ""}` })),
    ],
    [nodes, guests],
  );
  const chosen = target ?? options[0]?.value ?? "";

  useEffect(() => {
    if (!chosen || !box.current) return;
    let alive = true;
    const [kind, id] = chosen.split(":") as [string, string];
    setState({ kind: "loading" });
    api.rrd(kind === "vmid" ? { vmid: Number(id) } : { node: id }, tf).then(
      (points) => {
        if (!alive || !box.current) return;
        const data = toColumns(points);
        const a = accent();
        plot.current?.destroy();
        plot.current = new uPlot(
          {
            width: Math.max(240, box.current.clientWidth),
            height: 180,
            cursor: { drag: { x: false, y: false } },
            legend: { live: false },
            scales: { pct: { range: [0, 100] } },
            axes: [
              { stroke: "#8aa3b3", grid: { stroke: "#173247" } },
              { scale: "pct", stroke: "#8aa3b3", grid: { stroke: "#173247" }, values: (_u, v) => v.map((x) => `${x}%`) },
              // uPlot.Axis.Side is an ambient const enum (unusable with isolatedModules); 1 = right.
              // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
              { scale: "net", side: 1, stroke: "#8aa3b3", grid: { show: false }, values: (_u, v) => v.map((x) => bytes(x)) },
            ],
            series: [
              {},
              { label: "CPU %", scale: "pct", stroke: a, width: 1.5 },
              { label: "MEM %", scale: "pct", stroke: "#3ddc84", width: 1.5 },
              { label: "net in", scale: "net", stroke: "#ffc247", width: 1 },
              { label: "net out", scale: "net", stroke: "#c49bff", width: 1 },
            ],
          },
          data,
          box.current,
        );
        setState({ kind: "ok", points: points.length });
      },
      (e: unknown) => {
        if (!alive) return;
        plot.current?.destroy();
        plot.current = null;
        setState({ kind: "error", text: api.isMissing(e) ? "RRD history is not available on this agent host." : e instanceof Error ? e.message : String(e) });
      },
    );
    return () => {
      alive = false;
    };
  }, [chosen, tf]);

  useEffect(() => () => plot.current?.destroy(), []);

  return (
    <section className="rrd" aria-label="metrics history" data-testid="rrd-panel">
      <h3 className="sub-title">HISTORY</h3>
      <div className="rrd-controls">
        <label>
          <span className="sr-only">Chart of</span>
          <select aria-label="chart of" value={chosen} onChange={(e) => setTarget(e.target.value)}>
            {options.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        <div role="group" aria-label="timeframe" className="guest-filters">
          {api.TIMEFRAMES.map((t) => (
            <button key={t} type="button" className={`chip ${tf === t ? "on" : ""}`} aria-pressed={tf === t} onClick={() => setTf(t)}>
              {t}
            </button>
          ))}
        </div>
      </div>
      <div ref={box} className="rrd-chart" data-testid="rrd-chart" data-points={state.kind === "ok" ? state.points : 0} />
      {state.kind === "loading" && <p className="muted tiny">loading…</p>}
      {state.kind === "error" && (
        <p className="muted tiny" role="status" data-testid="rrd-error">
          {state.text}
        </p>
      )}
    </section>
  );
}
