// Command palette (Ctrl/Cmd+K) and hotkey help (?), both modal dialogs with focus kept inside.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import * as api from "../api";
import { filterCommands, type Command } from "../lib/commands";
import { changeAutonomy, useIntel } from "../stores/intel";
import { THEMES, useUi, type Panel } from "../stores/ui";
import { toggleAutoplay } from "../voice/autoplay";
import { player } from "../voice/player";

export const HOTKEYS: [string, string][] = [
  ["1 / 2 / 3", "focus the cluster / center / control column"],
  ["t", "open and focus the terminal"],
  ["m", "cycle the visual mode (full, ops, minimal)"],
  ["Ctrl+K / ⌘K", "command palette"],
  ["?", "this help"],
  ["Esc", "close a dialog"],
  ["Enter / Shift+Enter", "send / new line in the chat"],
];

export function focusPanel(p: Panel): void {
  useUi.getState().setPanel(p);
  document.getElementById(`panel-${p}`)?.focus();
}

function commands(): Command[] {
  const ui = useUi.getState();
  return [
    { id: "chat", label: "Go to CHAT", run: () => ui.setTab("chat") },
    { id: "hud", label: "Go to HUD", run: () => ui.setTab("hud") },
    { id: "feed", label: "Go to FEED", run: () => ui.setTab("feed") },
    { id: "rules", label: "Go to RULES (alert rules, active alerts, autonomy, why?)", run: () => ui.setTab("rules") },
    { id: "cluster", label: "Focus cluster column", hint: "1", run: () => focusPanel("cluster") },
    { id: "center", label: "Focus center column", hint: "2", run: () => focusPanel("center") },
    { id: "right", label: "Focus control column", hint: "3", run: () => focusPanel("right") },
    { id: "terminal", label: "Open terminal", hint: "t", run: () => ui.focusTerminal() },
    { id: "mode", label: "Cycle visual mode", hint: "m", run: () => ui.cycleMode() },
    ...THEMES.map((t) => ({ id: `theme-${t}`, label: `Theme: ${t}`, run: () => ui.setTheme(t) })),
    {
      id: "voice",
      label: "Toggle voice auto-play",
      run: () => void toggleAutoplay(),
    },
    { id: "stop", label: "Stop speaking", run: () => player.stop() },
    {
      id: "kill",
      label: "Toggle kill switch",
      run: () => {
        const on = useUi.getState().killSwitch;
        if (on === null) return;
        api.setKillSwitch(!on).then(
          (v) => useUi.getState().setKillSwitch(v),
          (e: unknown) => useUi.getState().setKillSwitch(on, e instanceof Error ? e.message : "failed"),
        );
      },
    },
    { id: "help", label: "Keyboard shortcuts", hint: "?", run: () => ui.setOverlay("help") },
    ...(typeof useIntel.getState().autonomy === "number"
      ? [0, 1, 2, 3, 4].map((level) => ({
          id: `autonomy-${level}`,
          label: `Set autonomy level ${level}`,
          run: () => {
            changeAutonomy(level).catch(
              (e: unknown) => useUi.getState().pushFeed("alert", `autonomy not changed: ${e instanceof Error ? e.message : String(e)}`),
            );
          },
        }))
      : []),
  ];
}

/** Keep Tab inside the dialog and close on Escape. */
function trap(e: KeyboardEvent<HTMLDivElement>, close: () => void): void {
  if (e.key === "Escape") {
    e.preventDefault();
    close();
    return;
  }
  if (e.key !== "Tab") return;
  const f = e.currentTarget.querySelectorAll<HTMLElement>("button, input, [tabindex='0']");
  const first = f[0];
  const last = f[f.length - 1];
  if (!first || !last) return;
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}

function Palette({ close }: { close: () => void }): ReactNode {
  const [q, setQ] = useState("");
  const [sel, setSel] = useState(0);
  const all = useMemo(commands, []);
  const shown = filterCommands(all, q);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const run = (c: Command | undefined) => {
    if (!c) return;
    close();
    c.run();
  };
  return (
    <div className="overlay" onClick={close}>
      <div className="dialog panel palette" role="dialog" aria-modal="true" aria-label="command palette" onClick={(e) => e.stopPropagation()} onKeyDown={(e) => trap(e, close)}>
        <input
          ref={input}
          type="text"
          role="combobox"
          aria-expanded="true"
          aria-controls="palette-list"
          aria-activedescendant={shown[sel] ? `cmd-${shown[sel].id}` : undefined}
          aria-label="command"
          placeholder="Type a command…"
          value={q}
          onChange={(e) => {
            setQ(e.target.value);
            setSel(0);
          }}
          onKeyDown={(e) => {
            if (e.key === "ArrowDown") {
              e.preventDefault();
              setSel((s) => Math.min(shown.length - 1, s + 1));
            } else if (e.key === "ArrowUp") {
              e.preventDefault();
              setSel((s) => Math.max(0, s - 1));
            } else if (e.key === "Enter") {
              e.preventDefault();
              run(shown[sel]);
            }
          }}
        />
        <ul id="palette-list" role="listbox" aria-label="commands">
          {shown.map((c, i) => (
            <li key={c.id} id={`cmd-${c.id}`} role="option" aria-selected={i === sel} className={i === sel ? "on" : ""} onMouseEnter={() => setSel(i)} onClick={() => run(c)}>
              {c.label}
              {c.hint && <kbd>{c.hint}</kbd>}
            </li>
          ))}
          {shown.length === 0 && <li className="muted">No command matches.</li>}
        </ul>
      </div>
    </div>
  );
}

function Help({ close }: { close: () => void }): ReactNode {
  const btn = useRef<HTMLButtonElement>(null);
  useEffect(() => btn.current?.focus(), []);
  return (
    <div className="overlay" onClick={close}>
      <div className="dialog panel" role="dialog" aria-modal="true" aria-labelledby="help-title" onClick={(e) => e.stopPropagation()} onKeyDown={(e) => trap(e, close)}>
        <h2 id="help-title" className="panel-title">
          KEYBOARD SHORTCUTS
        </h2>
        <dl className="kv help">
          {HOTKEYS.map(([k, v]) => (
            <div key={k}>
              <dt>
                <kbd>{k}</kbd>
              </dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
        <button ref={btn} type="button" className="btn small" onClick={close}>
          Close
        </button>
      </div>
    </div>
  );
}

export function Overlays(): ReactNode {
  const overlay = useUi((s) => s.overlay);
  const prev = useRef<Element | null>(null);
  useEffect(() => {
    if (overlay) prev.current = document.activeElement;
    else if (prev.current instanceof HTMLElement) prev.current.focus();
  }, [overlay]);
  const close = () => useUi.getState().setOverlay(null);
  if (overlay === "palette") return <Palette close={close} />;
  if (overlay === "help") return <Help close={close} />;
  return null;
}
