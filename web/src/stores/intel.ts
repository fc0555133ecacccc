// Data of the backends that land in other branches (costs, monitor events and state): each is
// `null` while loading, "missing" when this agent host answers 404, or the data.
import { create } from "zustand";
import * as api from "../api";
import type { CostSummary, MonitorEvent, MonitorState } from "../protocol";

export type Maybe<T> = T | null | "missing";

export interface IntelState {
  costs: Maybe<CostSummary>;
  /** Monitor events, newest first, unique by id. */
  events: Maybe<readonly MonitorEvent[]>;
  autonomy: Maybe<number>;
  /** GET /api/monitor: rules, active alerts, autonomy (the top bar reads `autonomy`). */
  monitor: Maybe<MonitorState>;
  setCosts: (c: Maybe<CostSummary>) => void;
  setEvents: (e: Maybe<readonly MonitorEvent[]>) => void;
  addEvent: (e: MonitorEvent) => void;
  setAutonomy: (a: Maybe<number>) => void;
  setMonitor: (m: Maybe<MonitorState>) => void;
}

const MAX_EVENTS = 500;

/** Merge events newest first by id; an event already held keeps its object identity. */
export function mergeEvents(held: readonly MonitorEvent[], incoming: readonly MonitorEvent[]): readonly MonitorEvent[] {
  const byId = new Map(held.map((e) => [e.id, e]));
  let changed = false;
  for (const e of incoming) {
    const old = byId.get(e.id);
    if (!old || JSON.stringify(old) !== JSON.stringify(e)) {
      byId.set(e.id, e);
      changed = true;
    }
  }
  if (!changed) return held;
  return [...byId.values()].sort((a, b) => b.id - a.id).slice(0, MAX_EVENTS);
}

export const useIntel = create<IntelState>()((set) => ({
  costs: null,
  events: null,
  autonomy: null,
  monitor: null,
  setCosts: (costs) => set({ costs }),
  setEvents: (events) => set({ events }),
  addEvent: (e) => {
    set((s) => ({ events: mergeEvents(Array.isArray(s.events) ? s.events : [], [e]) }));
    // Alerts fire and clear, the autonomy changes (an info event): the top bar follows.
    if (e.kind !== "action" && e.kind !== "verify") refreshMonitorSoon();
  },
  setAutonomy: (autonomy) => set({ autonomy }),
  setMonitor: (monitor) => set({ monitor, autonomy: monitor === null || monitor === "missing" ? monitor : monitor.autonomy }),
}));

/** Load `what` into the store: 404 ⇒ "missing"; other failures keep what is there. */
export async function load<T>(fetcher: () => Promise<T>, put: (v: Maybe<T>) => void): Promise<void> {
  try {
    put(await fetcher());
  } catch (e) {
    if (api.isMissing(e)) put("missing");
  }
}

export function loadIntel(): void {
  const s = useIntel.getState();
  void load(api.costs, s.setCosts);
  void load(() => api.events("all", 200), s.setEvents);
  void loadMonitor();
}

let refreshTimer: ReturnType<typeof setTimeout> | null = null;

/** Reload the monitor document shortly (once per burst of events), if this agent host has one. */
function refreshMonitorSoon(): void {
  const m = useIntel.getState().monitor;
  if (m === null || m === "missing" || refreshTimer !== null) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    void loadMonitor();
  }, 500);
}

/** (Re)load GET /api/monitor into the store. */
export function loadMonitor(): Promise<void> {
  return load(api.monitor, useIntel.getState().setMonitor);
}

/** PUT the autonomy level; the answer (the monitor document) replaces the store's. */
export async function changeAutonomy(level: number): Promise<void> {
  useIntel.getState().setMonitor(await api.setAutonomy(level));
}
