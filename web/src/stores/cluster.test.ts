import { beforeEach, describe, expect, it } from "vitest";
import type { Snapshot } from "../protocol";
import { useCluster } from "./cluster";

function snap(over: { cpu1?: number; status101?: string; extraGuest?: boolean } = {}): Snapshot {
  return {
    generated_at: 1,
    clusters: [
      {
        name: "homelab",
        quorate: true,
        nodes: [
          { id: "node/pve1", type: "node", node: "pve1", status: "online", cpu: over.cpu1 ?? 0.1, maxcpu: 8, mem: 1, maxmem: 2 },
          { id: "node/pve2", type: "node", node: "pve2", status: "online", cpu: 0.2, maxcpu: 8, mem: 1, maxmem: 2 },
        ],
        guests: [
          { id: "qemu/101", type: "qemu", vmid: 101, node: "pve1", name: "web", status: over.status101 ?? "running" },
          { id: "lxc/100", type: "lxc", vmid: 100, node: "pve2", name: "dns", status: "running" },
          ...(over.extraGuest ? [{ id: "qemu/102", type: "qemu", vmid: 102, node: "pve2", name: "db", status: "stopped" }] : []),
        ],
        storage: [{ id: "storage/pve1/local", type: "storage", node: "pve1", storage: "local", disk: 1, maxdisk: 10 }],
        tasks: [],
      },
    ],
  };
}

describe("cluster store: diff-based snapshot updates", () => {
  beforeEach(() => {
    useCluster.setState({ nodes: [], guests: [], storage: [], clusters: [], tasks: [], source: "none" });
  });

  it("keeps every array and entity identical when an equal snapshot arrives", () => {
    useCluster.getState().applySnapshot(snap(), "ws");
    const before = useCluster.getState();
    useCluster.getState().applySnapshot(snap(), "ws");
    const after = useCluster.getState();
    expect(after.nodes).toBe(before.nodes);
    expect(after.guests).toBe(before.guests);
    expect(after.storage).toBe(before.storage);
    expect(after.clusters).toBe(before.clusters);
  });

  it("replaces only the node whose data changed; the others keep their identity", () => {
    useCluster.getState().applySnapshot(snap(), "ws");
    const [a1, b1] = useCluster.getState().nodes;
    const guests1 = useCluster.getState().guests;
    useCluster.getState().applySnapshot(snap({ cpu1: 0.9 }), "ws");
    const [a2, b2] = useCluster.getState().nodes;
    expect(a2).not.toBe(a1);
    expect(a2?.cpu).toBe(0.9);
    expect(b2).toBe(b1);
    expect(useCluster.getState().guests).toBe(guests1);
  });

  it("keeps unchanged guests when one guest changes state or a guest is added", () => {
    useCluster.getState().applySnapshot(snap(), "ws");
    const g1 = useCluster.getState().guests;
    const dns = g1.find((g) => g.vmid === 100);
    useCluster.getState().applySnapshot(snap({ status101: "stopped", extraGuest: true }), "ws");
    const g2 = useCluster.getState().guests;
    expect(g2).not.toBe(g1);
    expect(g2.find((g) => g.vmid === 100)).toBe(dns);
    expect(g2.find((g) => g.vmid === 101)?.status).toBe("stopped");
    expect(g2.map((g) => g.vmid)).toEqual([100, 101, 102]);
  });

  it("tags rows with their cluster and records the feed source", () => {
    useCluster.getState().applySnapshot(snap(), "poll");
    expect(useCluster.getState().nodes[0]?.cluster).toBe("homelab");
    expect(useCluster.getState().source).toBe("poll");
    expect(useCluster.getState().clusters[0]?.quorate).toBe(true);
  });
});
