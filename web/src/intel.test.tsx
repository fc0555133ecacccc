// The panels built against backends of other branches: WS messages and REST answers (mocked)
// flow into the stores and render; a 404 renders "not available".
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CostsPanel, Feed, MemoryPanel } from "./components/Intel";
import { MessageView } from "./components/Cards";
import { connection } from "./connection";
import type { CostSummary, MonitorEvent } from "./protocol";
import { useChat } from "./stores/chat";
import { loadIntel, mergeEvents, useIntel } from "./stores/intel";
import { waitUi } from "./testing/dom";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const bucket = { usd: 0.5, requests: 3, input_tokens: 100, output_tokens: 50 };
const summary: CostSummary = {
  currency: "USD",
  today: bucket,
  week: { ...bucket, usd: 2 },
  month: { ...bucket, usd: 7.25 },
  budget: { daily_usd: 1, monthly_usd: null, daily_used: 0.5, monthly_used: 7.25, state: "warn" },
  by_provider: [{ provider: "anthropic", model: "claude-sonnet", requests: 3, input_tokens: 100, output_tokens: 50, usd: 0.5 }],
  recent: [],
  saved_usd: 1.5,
};

const ev = (id: number, over: Partial<MonitorEvent> = {}): MonitorEvent => ({
  id, ts: new Date(1_700_000_000_000 + id * 1000).toISOString(), kind: "info", severity: "info", resource: null, condition: null, title: `event ${id}`, detail: "", auto: false, ...over,
});

let root: Root;
let host: HTMLDivElement;

function render(node: React.ReactNode): void {
  act(() => root.render(node));
}

/** Wait for a condition with React updates inside act (no "not wrapped in act" noise). */
function mockFetch(routes: Record<string, { status: number; body?: unknown }>): void {
  vi.stubGlobal(
    "fetch",
    vi.fn((url: string) => {
      const path = url.split("?")[0] ?? url;
      const r = routes[path] ?? { status: 404, body: { error: "not found" } };
      return Promise.resolve(new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, statusText: r.status === 404 ? "Not Found" : "OK" }));
    }),
  );
}

beforeEach(() => {
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
  useIntel.setState({ costs: null, events: null, autonomy: null });
  useChat.getState().reset();
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
  vi.unstubAllGlobals();
});

describe("intel stores and panels", () => {
  it("404 from /api/costs, /api/events and /api/monitor marks them missing; the panels say so", async () => {
    mockFetch({});
    loadIntel();
    await vi.waitFor(() => expect(useIntel.getState()).toMatchObject({ costs: "missing", events: "missing", autonomy: "missing" }));
    render(
      <>
        <CostsPanel />
        <Feed />
      </>,
    );
    expect(host.textContent).toContain("Cost history (GET /api/costs) is not available");
    expect(host.textContent).toContain("Monitor events (GET /api/events) are not available");
  });

  it("a server error other than 404 keeps the loading state (it is not reported as a missing feature)", async () => {
    mockFetch({ "/api/costs": { status: 500, body: { error: "db" } }, "/api/events": { status: 200, body: { events: [ev(1)] } }, "/api/monitor": { status: 200, body: { autonomy: 2, kill_switch: false, rules: [], active: [] } } });
    loadIntel();
    await vi.waitFor(() => expect(useIntel.getState().autonomy).toBe(2));
    expect(useIntel.getState().costs).toBeNull();
    expect(useIntel.getState().events).toHaveLength(1);
  });

  it("WS cost and event messages update the panels; FEED filters ALL/AUTO/ALERTS", () => {
    connection.handle({ type: "cost", summary });
    connection.handle({ type: "event", event: ev(1, { title: "disk filling", kind: "alert", severity: "warning", resource: "node/pve1" }) });
    connection.handle({ type: "event", event: ev(2, { title: "restarted chrony", kind: "action", auto: true }) });
    connection.handle({ type: "event", event: ev(3, { title: "all clear" , kind: "clear" }) });
    render(<CostsPanel />);
    expect(host.querySelector("[data-testid=cost-summary]")?.textContent).toContain("$7.25");
    expect(host.textContent).toContain("(WARN)");
    render(<Feed />);
    const items = () => Array.from(host.querySelectorAll("[data-testid=feed-list] li")).map((li) => li.textContent);
    expect(items()).toHaveLength(3);
    const chip = (name: string) => Array.from(host.querySelectorAll("button")).find((b) => b.textContent === name) as HTMLButtonElement;
    act(() => chip("AUTO").click());
    expect(items()).toEqual([expect.stringContaining("restarted chrony")]);
    act(() => chip("ALERTS").click());
    expect(items()).toEqual([expect.stringContaining("disk filling · node/pve1")]);
  });

  it("merging events keeps held ones identical and orders newest first", () => {
    const a = [ev(2), ev(1)];
    expect(mergeEvents(a, [ev(1)])).toBe(a);
    const b = mergeEvents(a, [ev(3)]);
    expect(b.map((e) => e.id)).toEqual([3, 2, 1]);
    expect(b[1]).toBe(a[0]);
  });

  it("route before the tokens puts the provider badge and reason on the answer; done.route corrects it", () => {
    connection.handle({ type: "route", session_id: "s1", provider: "local", model: "qwen3", reason: "simple status question", rule: "short" });
    useChat.getState().appendTokens(new Map([["s1", "All fine."]]));
    const item = useChat.getState().items[0];
    expect(item).toMatchObject({ kind: "assistant", provider: "local", route: { reason: "simple status question" } });
    connection.handle({ type: "done", session_id: "s1", usage: {}, cost_usd: 0, timing: {}, iterations: 1, route: { provider: "anthropic", model: "claude", reason: "escalated: tool use", rule: "tools" } });
    const done = useChat.getState().items[0];
    expect(done).toMatchObject({ provider: "anthropic", route: { reason: "escalated: tool use" }, streaming: false });
    render(done ? <MessageView item={done} /> : null);
    expect(host.querySelector("[data-testid=provider-badge]")?.textContent).toBe("Claude");
    expect(host.textContent).toContain("escalated: tool use");
  });

  it("the memory panel lists, searches and deletes through /api/memory", async () => {
    const calls: string[] = [];
    let list = [
      { id: 1, tier: "semantic", kind: "fact", text: "pve3 has the GPU", source: "user:dashboard", session_id: null, created_at: "2026-11-25T10:00:00Z", expires_at: null },
      { id: 2, tier: "episodic", kind: "event", text: "restarted chrony", source: "monitor", session_id: null, created_at: "2026-11-25T11:00:00Z", expires_at: null },
    ];
    vi.stubGlobal(
      "fetch",
      vi.fn((url: string, init?: RequestInit) => {
        calls.push(`${init?.method ?? "GET"} ${url}`);
        if (init?.method === "DELETE") {
          list = list.filter((m) => !url.endsWith(`/${m.id}`));
          return Promise.resolve(new Response(null, { status: 204 }));
        }
        const q = new URL(url, "http://x").searchParams.get("q") ?? "";
        return Promise.resolve(new Response(JSON.stringify({ memories: list.filter((m) => m.text.includes(q)) }), { status: 200 }));
      }),
    );
    render(<MemoryPanel />);
    await waitUi(() => expect(host.querySelectorAll("[data-testid=memory-row]")).toHaveLength(2));
    const del = host.querySelector("[aria-label='delete memory 1']") as HTMLButtonElement;
    act(() => {
      del.click();
    });
    await waitUi(() => expect(host.querySelectorAll("[data-testid=memory-row]")).toHaveLength(1));
    expect(calls).toContain("DELETE /api/memory/1");
    expect(host.textContent).toContain("restarted chrony");
  });

  it("the memory panel says 'not available' on 404", async () => {
    mockFetch({});
    render(<MemoryPanel />);
    await waitUi(() => expect(host.textContent).toContain("Memory (GET /api/memory) is not available"));
  });
});
