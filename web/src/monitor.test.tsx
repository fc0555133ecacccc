// The RULES view (monitor settings) and the FEED's "Why?" against a mocked fetch, and the
// helpers behind them.
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Feed } from "./components/Intel";
import { MonitorView } from "./components/Monitor";
import { amount, overrideText, resourceIds, secsText, spark } from "./lib/monitor";
import type { Explanation, MonitorEvent, MonitorRule, MonitorState } from "./protocol";
import { useCluster } from "./stores/cluster";
import { useIntel } from "./stores/intel";
import { type Call, type Handler, mockFetch, waitUi } from "./testing/dom";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const CONDITIONS = ["node_unreachable", "guest_crashed", "cpu", "memory", "disk", "storage", "temperature", "ha_error", "backup_failed", "task_error"];
const FLAGS = new Set(["node_unreachable", "guest_crashed", "ha_error", "backup_failed", "task_error"]);

function rule(condition: string): MonitorRule {
  const flag = FLAGS.has(condition);
  return {
    condition,
    title: condition === "cpu" ? "CPU high" : condition.replace("_", " "),
    unit: flag ? "" : condition === "temperature" ? "°C" : "%",
    flag,
    enabled: condition !== "task_error",
    fire: flag ? 1 : 90,
    critical: flag ? null : 97,
    clear: flag ? 0 : 80,
    sustain_secs: 300,
    clear_secs: 60,
    severity: flag ? "critical" : "warning",
    overrides: condition === "cpu" ? [{ resource: "node/pve3", fire: 95, sustain_secs: 600 }] : [],
  };
}

function monitorDoc(autonomy = 3): MonitorState {
  return {
    autonomy,
    kill_switch: false,
    enabled: true,
    rules: CONDITIONS.map(rule),
    active: [{ condition: "cpu", resource: "node/pve1", since: "2026-11-25T21:00:00Z", value: 93.4, severity: "warning", label: "node pve1", flapping: false }],
    notify: { channels: 1, errors: [] },
    runbooks: [
      { name: "restart_crashed_guest", condition: "guest_crashed", tool: "start_guest", enabled: true },
      { name: "retry_failed_backup", condition: "backup_failed", tool: "backup_guest", enabled: false },
    ],
  };
}

const explanation: Explanation = {
  condition: "cpu",
  resource: "node/pve1",
  firing: true,
  explanation: "Firing: 93.4% has been at or above 90% for 312 s (rule: 300 s).",
  samples: [
    { ts: "2026-11-25T21:00:00Z", value: 91 },
    { ts: "2026-11-25T21:00:10Z", value: 95 },
    { ts: "2026-11-25T21:00:20Z", value: 93.4 },
  ],
  thresholds: { enabled: true, fire: 90, critical: 97, clear: 80, sustain_secs: 300, clear_secs: 60, severity: "warning", overrides: [] },
};

let calls: Call[];
let root: Root;
let host: HTMLDivElement;

/** The monitor backend: GET /api/monitor, PUT autonomy, explain. */
function monitorBackend(extra: Handler = () => undefined): Handler {
  let doc = monitorDoc();
  return (c) => {
    const path = c.url.split("?")[0];
    if (path === "/api/monitor" && c.method === "GET") return { status: 200, body: doc };
    if (path === "/api/monitor/autonomy" && c.method === "PUT") {
      const level = (c.body as { level: number }).level;
      if (level < 0 || level > 4) return { status: 400, body: { error: "level must be 0..4" } };
      doc = { ...doc, autonomy: level };
      return { status: 200, body: doc };
    }
    if (path === "/api/monitor/explain") {
      const q = new URL(c.url, "http://x").searchParams;
      return { status: 200, body: { ...explanation, condition: q.get("condition"), resource: q.get("resource") } };
    }
    return extra(c);
  };
}

function render(node: React.ReactNode): void {
  act(() => root.render(node));
}

const button = (label: string): HTMLButtonElement => {
  const b = host.querySelector<HTMLButtonElement>(`button[aria-label='${label}']`);
  if (!b) throw new Error(`no button labelled ${label}`);
  return b;
};

function setValue(el: HTMLInputElement | HTMLSelectElement, value: string): void {
  const proto = el instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, "value")?.set?.call(el, value);
  el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
}

beforeEach(() => {
  calls = [];
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
  useIntel.setState({ costs: null, events: null, autonomy: null, monitor: null });
  useCluster.setState({ nodes: [], guests: [], storage: [] });
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
  vi.unstubAllGlobals();
});

describe("RULES view", () => {
  it("renders the ten rules with thresholds and overrides, and the active alerts", async () => {
    mockFetch(calls, monitorBackend());
    render(<MonitorView />);
    await waitUi(() => expect(host.querySelectorAll("[data-testid=rule-row]")).toHaveLength(10));
    const rows = Array.from(host.querySelectorAll("[data-testid=rule-row]"));
    expect(rows.map((r) => r.getAttribute("data-condition"))).toEqual(CONDITIONS);
    const cpu = rows.find((r) => r.getAttribute("data-condition") === "cpu")!;
    expect(cpu.textContent).toContain("CPU high");
    expect(cpu.textContent).toContain("90%");
    expect(cpu.textContent).toContain("97%");
    expect(cpu.textContent).toContain("80%");
    expect(cpu.textContent).toContain("5 min");
    expect(cpu.textContent).toContain("node/pve3: fire 95%, sustain 10 min");
    expect(rows.find((r) => r.getAttribute("data-condition") === "backup_failed")!.textContent).toContain("yes/no condition");
    expect(rows.find((r) => r.getAttribute("data-condition") === "task_error")!.className).toContain("disabled");
    expect(host.querySelector("[data-testid=active-alerts]")?.textContent).toContain("node pve1");
    expect(host.querySelector("[data-testid=active-alerts]")?.textContent).toContain("93.4%");
    expect(useIntel.getState().autonomy).toBe(3);
    // The runbooks with their switches.
    const books = Array.from(host.querySelectorAll("[data-testid=runbook]"));
    expect(books.map((b) => [b.getAttribute("data-name"), b.textContent.startsWith("ON")])).toEqual([
      ["restart_crashed_guest", true],
      ["retry_failed_backup", false],
    ]);
    expect(books[1]!.textContent).toContain("backup failed → backup_guest");
    expect(books[1]!.className).toContain("disabled");
  });

  it("'Why?' on an active alert shows the explanation, thresholds and samples", async () => {
    mockFetch(calls, monitorBackend());
    render(<MonitorView />);
    await waitUi(() => expect(host.querySelector("[data-testid=active-alert]")).not.toBeNull());
    act(() => button("why? cpu on node/pve1").click());
    await waitUi(() => expect(host.querySelector("[data-testid=explanation]")?.textContent).toBe(explanation.explanation));
    expect(calls.some((c) => c.url === "/api/monitor/explain?condition=cpu&resource=node%2Fpve1")).toBe(true);
    const box = host.querySelector("[data-testid=explain]")!;
    expect(box.querySelector("[data-testid=explain-firing]")?.textContent).toBe("FIRING");
    expect(box.textContent).toContain("90% (critical 97%)");
    expect(box.textContent).toContain("3 samples");
    const svg = box.querySelector("[data-testid=sparkline]")!;
    expect(svg.getAttribute("aria-label")).toContain("latest 93.4%");
    expect(svg.querySelector("polyline")?.getAttribute("points")?.split(" ")).toHaveLength(3);
  });

  it("the Why? form explains any (condition, resource) picked", async () => {
    mockFetch(calls, monitorBackend());
    useCluster.setState({ nodes: [{ id: "node/pve2", type: "node", node: "pve2", cluster: "c" }] });
    render(<MonitorView />);
    await waitUi(() => expect(host.querySelectorAll("[data-testid=rule-row]")).toHaveLength(10));
    expect(Array.from(host.querySelectorAll("datalist option")).map((o) => o.getAttribute("value"))).toEqual(["node/pve2"]);
    act(() => setValue(host.querySelector<HTMLSelectElement>("select[aria-label=condition]")!, "memory"));
    act(() => setValue(host.querySelector<HTMLInputElement>("input[aria-label=resource]")!, "qemu/101"));
    const submit = Array.from(host.querySelectorAll<HTMLButtonElement>(".why-form button")).find((b) => b.textContent === "Why?")!;
    act(() => submit.click());
    await waitUi(() => expect(host.querySelector("[data-testid=explanation]")).not.toBeNull());
    expect(calls.at(-1)?.url).toBe("/api/monitor/explain?condition=memory&resource=qemu%2F101");
    expect(host.querySelector("[data-testid=explain]")?.getAttribute("aria-label")).toBe("why: memory on qemu/101");
  });

  it("changing the autonomy level PUTs it and shows the level the agent host answers with", async () => {
    mockFetch(calls, monitorBackend());
    render(<MonitorView />);
    const select = () => host.querySelector<HTMLSelectElement>("[data-testid=autonomy-select]")!;
    await waitUi(() => expect(select().value).toBe("3"));
    act(() => setValue(select(), "1"));
    await waitUi(() => expect(useIntel.getState().autonomy).toBe(1));
    expect(calls.filter((c) => c.method === "PUT")).toEqual([{ method: "PUT", url: "/api/monitor/autonomy", body: { level: 1 } }]);
    expect(select().value).toBe("1");
    expect(host.querySelector("label[for]")?.textContent).toBe("autonomy level");
  });

  it("a refused autonomy change is reported and the level stays", async () => {
    const doc = monitorDoc(2);
    mockFetch(calls, (c) => (c.method === "PUT" ? { status: 403, body: { error: "kill switch engaged" } } : c.url === "/api/monitor" ? { status: 200, body: doc } : undefined));
    render(<MonitorView />);
    const select = () => host.querySelector<HTMLSelectElement>("[data-testid=autonomy-select]")!;
    await waitUi(() => expect(select().value).toBe("2"));
    act(() => setValue(select(), "4"));
    await waitUi(() => expect(host.querySelector("[role=alert]")?.textContent).toContain("kill switch engaged"));
    expect(useIntel.getState().autonomy).toBe(2);
  });

  it("404 from GET /api/monitor says the monitor is not available", async () => {
    mockFetch(calls, () => undefined);
    render(<MonitorView />);
    await waitUi(() => expect(host.textContent).toContain("The monitor (GET /api/monitor) is not available on this agent host."));
    expect(useIntel.getState().monitor).toBe("missing");
  });

  it("404 from the explain endpoint says explanations are not available; 400 shows the error", async () => {
    mockFetch(calls, (c) =>
      c.url === "/api/monitor" ? { status: 200, body: monitorDoc() } : c.url.includes("condition=disk") ? { status: 400, body: { error: "unknown condition" } } : undefined,
    );
    render(<MonitorView />);
    await waitUi(() => expect(host.querySelector("[data-testid=active-alert]")).not.toBeNull());
    act(() => button("why? cpu on node/pve1").click());
    await waitUi(() => expect(host.textContent).toContain("Explanations (GET /api/monitor/explain) are not available on this agent host."));
    act(() => setValue(host.querySelector<HTMLSelectElement>("select[aria-label=condition]")!, "disk"));
    act(() => setValue(host.querySelector<HTMLInputElement>("input[aria-label=resource]")!, "node/pve1"));
    act(() => host.querySelector<HTMLFormElement>(".why-form")!.requestSubmit());
    await waitUi(() => expect(host.querySelector("[data-testid=explain] [role=alert]")?.textContent).toBe("unknown condition"));
  });
});

describe("FEED Why?", () => {
  const ev = (id: number, over: Partial<MonitorEvent>): MonitorEvent => ({
    id, ts: "2026-11-25T21:00:00Z", kind: "alert", severity: "warning", resource: null, condition: null, title: `event ${id}`, detail: "", auto: false, ...over,
  });

  it("events with a condition and a resource offer Why?, which expands the explanation inline", async () => {
    mockFetch(calls, monitorBackend());
    useIntel.setState({ events: [ev(2, { title: "CPU high", condition: "cpu", resource: "node/pve1" }), ev(1, { kind: "info", severity: "info", title: "autonomy set to 3" })] });
    render(<Feed />);
    const whys = host.querySelectorAll("[data-testid=feed-list] button[aria-expanded]");
    expect(whys).toHaveLength(1);
    const why = button("why? cpu on node/pve1");
    expect(why.getAttribute("aria-expanded")).toBe("false");
    act(() => why.click());
    expect(why.getAttribute("aria-expanded")).toBe("true");
    await waitUi(() => expect(host.querySelector("[data-testid=explanation]")?.textContent).toBe(explanation.explanation));
    act(() => why.click());
    expect(host.querySelector("[data-testid=explain]")).toBeNull();
  });
});

describe("monitor helpers", () => {
  it("formats amounts, durations and overrides", () => {
    expect(amount(90, "%")).toBe("90%");
    expect(amount(93.44, "°C")).toBe("93.4 °C");
    expect(amount(null, "%")).toBe("—");
    expect(amount(1, " failed task(s)")).toBe("1 failed task(s)");
    expect(secsText(0)).toBe("0 s");
    expect(secsText(45)).toBe("45 s");
    expect(secsText(90)).toBe("90 s");
    expect(secsText(300)).toBe("5 min");
    expect(secsText(7200)).toBe("2 h");
    expect(overrideText({ resource: "qemu/101", enabled: false }, { unit: "%" })).toBe("qemu/101: disabled");
    expect(overrideText({ resource: "node/pve1", critical: 99, severity: "critical" }, { unit: "%" })).toBe("node/pve1: critical 99%, severity critical");
  });

  it("lists the monitor's resource ids for the cluster's nodes, guests and storage", () => {
    expect(
      resourceIds(
        [{ id: "node/pve1", type: "node", node: "pve1" }],
        [
          { id: "qemu/101", type: "qemu", vmid: 101 },
          { id: "lxc/200", type: "lxc", vmid: 200 },
        ],
        [
          { id: "storage/pve1/local", type: "storage", node: "pve1", storage: "local" },
          { id: "storage/pve1/nas", type: "storage", node: "pve1", storage: "nas", shared: true },
          { id: "storage/pve2/nas", type: "storage", node: "pve2", storage: "nas", shared: true },
        ],
      ),
    ).toEqual(["node/pve1", "qemu/101", "lxc/200", "storage/pve1/local", "storage/nas"]);
  });

  it("maps samples and thresholds into the sparkline box", () => {
    const s = spark([10, 20], 100, 20, [30, null]);
    expect(s.min).toBe(10);
    expect(s.max).toBe(30);
    expect(s.points).toBe("0.0,18.0 100.0,10.0");
    expect(s.lines).toEqual([2, null]);
    expect(spark([5], 100, 20).points).toBe("50.0,10.0");
  });
});
