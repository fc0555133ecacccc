// A probe for the performance bench (web/bench/perf.mjs): counts chat-store commits per
// animation frame and token messages while it runs. Inactive (one boolean check per commit)
// until the bench calls window.__jarvisPerf.start().
import { connection } from "./connection";
import { useChat } from "./stores/chat";

export interface PerfReport {
  tokens: number;
  /** `cluster` snapshots received (live data that re-renders changed cards). */
  clusterUpdates: number;
  commits: number;
  /** Frames in which at least one chat commit happened. */
  framesWithCommits: number;
  maxCommitsPerFrame: number;
}

export function installPerfProbe(): void {
  let on = false;
  let frame = 0;
  let tokens = 0;
  let clusterUpdates = 0;
  let commits = 0;
  const perFrame = new Map<number, number>();
  const tick = () => {
    frame++;
    if (on) requestAnimationFrame(tick);
  };
  useChat.subscribe(() => {
    if (!on) return;
    commits++;
    perFrame.set(frame, (perFrame.get(frame) ?? 0) + 1);
  });
  connection.subscribe((m) => {
    if (on && m.type === "token") tokens++;
    if (on && m.type === "cluster") clusterUpdates++;
    return false;
  });
  (window as { __jarvisPerf?: unknown }).__jarvisPerf = {
    /** `frames: false` counts messages only (no animation-frame loop, e.g. to measure idle CPU). */
    start: (opts?: { frames?: boolean }) => {
      on = true;
      tokens = commits = clusterUpdates = 0;
      perFrame.clear();
      if (opts?.frames !== false) requestAnimationFrame(tick);
    },
    stop: (): PerfReport => {
      on = false;
      return { tokens, clusterUpdates, commits, framesWithCommits: perFrame.size, maxCommitsPerFrame: Math.max(0, ...perFrame.values()) };
    },
  };
}
