import { create } from "zustand";
import type { ClusterDoc, ClusterTask, Resource, Snapshot } from "../protocol";
import { reconcileList } from "../lib/diff";

/** A resource row tagged with the cluster it belongs to. */
export interface Row extends Resource {
  cluster: string;
}

export interface ClusterInfo {
  name: string;
  quorate: boolean | null;
  error: string | null;
}

export type FeedSource = "ws" | "poll" | "none";

export interface ClusterState {
  generatedAt: number | null;
  clusters: readonly ClusterInfo[];
  nodes: readonly Row[];
  guests: readonly Row[];
  storage: readonly Row[];
  tasks: readonly ClusterTask[];
  source: FeedSource;
  /** Why there is no snapshot (e.g. the backend has none yet). */
  unavailable: string | null;
  applySnapshot: (snap: Snapshot, source: Exclude<FeedSource, "none">) => void;
  setUnavailable: (why: string | null) => void;
}

const rowKey = (r: Row): string => `${r.cluster}\u0000${r.id}`;

function rows(c: ClusterDoc, list: Resource[] | undefined): Row[] {
  return (list ?? []).map((r) => ({ ...r, cluster: c.name }));
}

export function guestKey(g: Row): string {
  return rowKey(g);
}

export const useCluster = create<ClusterState>()((set, get) => ({
  generatedAt: null,
  clusters: [],
  nodes: [],
  guests: [],
  storage: [],
  tasks: [],
  source: "none",
  unavailable: null,
  applySnapshot: (snap, source) => {
    const prev = get();
    const cs = Array.isArray(snap.clusters) ? snap.clusters : [];
    const nodes = reconcileList(prev.nodes, cs.flatMap((c) => rows(c, c.nodes)), rowKey);
    const guests = reconcileList(
      prev.guests,
      cs.flatMap((c) => rows(c, c.guests)).sort((a, b) => (a.vmid ?? 0) - (b.vmid ?? 0)),
      rowKey,
    );
    const storage = reconcileList(prev.storage, cs.flatMap((c) => rows(c, c.storage)), rowKey);
    const clusters = reconcileList(
      prev.clusters,
      cs.map((c) => ({ name: c.name, quorate: c.quorate ?? null, error: c.error ?? null })),
      (c) => c.name,
    );
    const tasks = reconcileList(
      prev.tasks,
      cs.flatMap((c) => c.tasks ?? []),
      (t) => t.upid ?? `${t.node ?? ""}:${t.starttime ?? 0}:${t.type ?? ""}`,
    );
    set({ generatedAt: snap.generated_at ?? null, nodes, guests, storage, clusters, tasks, source, unavailable: null });
  },
  setUnavailable: (why) => set({ unavailable: why }),
}));

export function nodeOnline(n: Resource): boolean {
  return n.status === "online";
}
