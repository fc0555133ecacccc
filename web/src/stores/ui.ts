import { create } from "zustand";
import type { Health } from "../protocol";

export const THEMES = ["amber", "cyan", "green", "purple", "red"] as const;
export type Theme = (typeof THEMES)[number];
export const MODES = ["full", "ops", "minimal"] as const;
export type Mode = (typeof MODES)[number];
export type Tab = "hud" | "feed" | "rules" | "chat";
export type Panel = "cluster" | "center" | "right";
export type Auth = "checking" | "login" | "in";
export type Link = "connecting" | "open" | "reconnecting" | "unreachable";

export interface FeedEntry {
  id: number;
  at: number;
  level: "info" | "alert" | "auto";
  text: string;
}

function stored<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
  try {
    const v = localStorage.getItem(key);
    return v !== null && (allowed as readonly string[]).includes(v) ? (v as T) : fallback;
  } catch {
    return fallback;
  }
}

function save(key: string, v: string): void {
  try {
    localStorage.setItem(key, v);
  } catch {
    /* private mode: settings simply do not persist */
  }
}

export interface UiState {
  theme: Theme;
  mode: Mode;
  tab: Tab;
  panel: Panel;
  auth: Auth;
  authNote: string | null;
  link: Link;
  health: Health | null;
  healthError: boolean;
  killSwitch: boolean | null;
  killSwitchError: string | null;
  feed: readonly FeedEntry[];
  /** Incremented to ask the terminal panel to open and take focus (hotkey t). */
  terminalFocus: number;
  /** Overlays: the command palette and the hotkey help. */
  overlay: "palette" | "help" | null;
  /** What the HUD's history chart shows: `node:<name>` or `vmid:<id>` (null: the first node). */
  chart: string | null;
  showChart: (target: string) => void;
  focusTerminal: () => void;
  setOverlay: (o: "palette" | "help" | null) => void;
  setTheme: (t: Theme) => void;
  cycleMode: () => void;
  setTab: (t: Tab) => void;
  setPanel: (p: Panel) => void;
  setAuth: (a: Auth, note?: string | null) => void;
  setLink: (l: Link) => void;
  setHealth: (h: Health | null, error: boolean) => void;
  setKillSwitch: (on: boolean | null, error?: string | null) => void;
  pushFeed: (level: FeedEntry["level"], text: string) => void;
}

let feedSeq = 0;

export const useUi = create<UiState>()((set) => ({
  theme: stored("jarvis_theme", THEMES, "cyan"),
  mode: stored("jarvis_mode", MODES, "full"),
  tab: "chat",
  panel: "center",
  auth: "checking",
  authNote: null,
  link: "connecting",
  health: null,
  healthError: false,
  killSwitch: null,
  killSwitchError: null,
  feed: [],
  terminalFocus: 0,
  overlay: null,
  chart: null,
  showChart: (chart) => set({ chart, tab: "hud", panel: "center" }),
  focusTerminal: () => set((s) => ({ terminalFocus: s.terminalFocus + 1, panel: "right" })),
  setOverlay: (overlay) => set({ overlay }),
  setTheme: (theme) => {
    save("jarvis_theme", theme);
    set({ theme });
  },
  cycleMode: () =>
    set((s) => {
      const mode = MODES[(MODES.indexOf(s.mode) + 1) % MODES.length] as Mode;
      save("jarvis_mode", mode);
      return { mode };
    }),
  setTab: (tab) => set({ tab, panel: "center" }),
  setPanel: (panel) => set({ panel }),
  setAuth: (auth, note = null) => set({ auth, authNote: note }),
  setLink: (link) => set({ link }),
  setHealth: (health, healthError) => set({ health, healthError }),
  setKillSwitch: (killSwitch, killSwitchError = null) => set({ killSwitch, killSwitchError }),
  pushFeed: (level, text) =>
    set((s) => ({ feed: [...s.feed.slice(-499), { id: ++feedSeq, at: Date.now(), level, text }] })),
}));
