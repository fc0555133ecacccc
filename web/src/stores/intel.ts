// Data of the backends that land in other branches (costs, monitor events, autonomy): each is
// `null` while loading, "missing" when this agent host answers 404, or the data.
import { create } from "zustand";
import * as api from "../api";
import type { CostSummary, MonitorEvent } from "../protocol";

export type Maybe<T> = T | null | "missing";

export interface IntelState {
  costs: Maybe<CostSummary>;
  /** Monitor events, newest first, unique by id. */
  events: Maybe<readonly MonitorEvent[]>;
  autonomy: Maybe<number>;
  setCosts: (c: Maybe<CostSummary>) => void;
  setEvents: (e: Maybe<readonly MonitorEvent[]>) => void;
  addEvent: (e: MonitorEvent) => void;
  setAutonomy: (a: Maybe<number>) => void;
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
  setCosts: (costs) => set({ costs }),
  setEvents: (events) => set({ events }),
  addEvent: (e) => set((s) => ({ events: mergeEvents(Array.isArray(s.events) ? s.events : [], [e]) })),
  setAutonomy: (autonomy) => set({ autonomy }),
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
  void load(async () => (await api.monitor()).autonomy, s.setAutonomy);
}
