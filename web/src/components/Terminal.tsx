// The terminal panel: a node picker and an xterm.js console, loaded on first use (click,
// Enter or hotkey t) so xterm stays out of the initial bundle.
import { useEffect, useRef, useState, type ReactNode } from "react";
import { nodeOnline, useCluster } from "../stores/cluster";
import { useUi } from "../stores/ui";
import type { TerminalSession } from "./xtermSession";

export function TerminalPanel(): ReactNode {
  const nodes = useCluster((s) => s.nodes);
  const focusReq = useUi((s) => s.terminalFocus);
  const [node, setNode] = useState("");
  const [open, setOpen] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const box = useRef<HTMLDivElement>(null);
  const session = useRef<TerminalSession | null>(null);
  const online = nodes.filter(nodeOnline).map((n) => n.node ?? n.id);
  const chosen = node || online[0] || "";

  useEffect(() => {
    if (focusReq > 0) setOpen(true);
  }, [focusReq]);

  useEffect(() => {
    if (!open || !box.current || session.current) {
      if (open) session.current?.focus();
      return;
    }
    let alive = true;
    import("./xtermSession").then(
      ({ openTerminal }) => {
        if (!alive || !box.current) return;
        session.current = openTerminal(box.current, chosen || "pve1");
        session.current.focus();
      },
      (e: unknown) => setErr(`terminal failed to load: ${String(e)}`),
    );
    return () => {
      alive = false;
    };
    // The node is passed on via setNode below; reopening is not wanted when it changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, focusReq]);

  useEffect(() => {
    if (chosen) session.current?.setNode(chosen);
  }, [chosen]);

  useEffect(
    () => () => {
      session.current?.dispose();
      session.current = null;
    },
    [],
  );

  return (
    <section className="terminal" aria-label="node terminal" data-testid="terminal">
      <h3 className="sub-title">
        TERMINAL <span className="tier tier-yellow">YELLOW</span>
      </h3>
      <label className="tiny">
        node{" "}
        <select aria-label="terminal node" value={chosen} onChange={(e) => setNode(e.target.value)}>
          {online.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      {!open && (
        <button type="button" className="btn small" onClick={() => setOpen(true)} data-testid="terminal-open">
          open terminal (t)
        </button>
      )}
      <div ref={box} className="xterm-box" hidden={!open} />
      {err && (
        <p className="error tiny" role="alert">
          {err}
        </p>
      )}
    </section>
  );
}
