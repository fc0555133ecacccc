// The voice auto-play switch: seeded from GET /api/settings/voice, saved back with PUT.
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { VoicePanel } from "../components/Voice";
import type { VoiceSettings } from "../protocol";
import { useVoice } from "../stores/voice";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

interface Call {
  method: string;
  url: string;
  body: unknown;
}

let calls: Call[];
let root: Root;
let host: HTMLDivElement;

function mockFetch(handler: (c: Call) => { status: number; body?: unknown } | undefined): void {
  vi.stubGlobal(
    "fetch",
    vi.fn((url: string, init?: RequestInit) => {
      const c: Call = { method: init?.method ?? "GET", url, body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined };
      calls.push(c);
      const r = handler(c) ?? { status: 404, body: { error: "not found" } };
      return Promise.resolve(new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, statusText: r.status === 404 ? "Not Found" : "OK" }));
    }),
  );
}

function render(node: React.ReactNode): void {
  act(() => root.render(node));
}

async function waitUi(check: () => void): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      check();
      return;
    } catch {
      await act(() => new Promise<void>((r) => setTimeout(r, 20)));
    }
  }
  check();
}

beforeEach(() => {
  calls = [];
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
  useVoice.setState({ settings: null, autoplay: false, error: null });
  localStorage.clear();
});

afterEach(() => {
  act(() => root.unmount());
  host.remove();
  vi.unstubAllGlobals();
});

describe("voice auto-play follows /api/settings/voice", () => {
  const settings = (autoplay: boolean): VoiceSettings => ({ engine: null, voice: null, speed: 1, autoplay, opus: true, engines: [] });
  // jsdom has no canvas: the visualiser draws nothing.
  beforeEach(() => {
    vi.spyOn(HTMLCanvasElement.prototype, "getContext").mockReturnValue(null);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("seeds the switch from the stored setting and saves a toggle with PUT", async () => {
    let stored = settings(true);
    mockFetch((c) => {
      if (c.url !== "/api/settings/voice") return undefined;
      if (c.method === "PUT") stored = { ...stored, ...(c.body as Partial<VoiceSettings>) };
      return { status: 200, body: stored };
    });
    render(<VoicePanel />);
    const toggle = () => host.querySelector<HTMLButtonElement>("[data-testid=autoplay]")!;
    expect(toggle().getAttribute("aria-checked")).toBe("false");
    await waitUi(() => expect(toggle().getAttribute("aria-checked")).toBe("true"));
    act(() => toggle().click());
    await waitUi(() => expect(calls.some((c) => c.method === "PUT")).toBe(true));
    expect(calls.filter((c) => c.method === "PUT")).toEqual([{ method: "PUT", url: "/api/settings/voice", body: { autoplay: false } }]);
    expect(toggle().getAttribute("aria-checked")).toBe("false");
    expect(stored.autoplay).toBe(false);
  });

  it("without a voice backend the switch works locally and nothing is PUT", async () => {
    mockFetch(() => undefined);
    render(<VoicePanel />);
    await waitUi(() => expect(useVoice.getState().settings).toBe("missing"));
    const toggle = host.querySelector<HTMLButtonElement>("[data-testid=autoplay]")!;
    act(() => toggle.click());
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    expect(localStorage.getItem("jarvis_autoplay")).toBe("1");
    expect(calls.filter((c) => c.method === "PUT")).toHaveLength(0);
  });
});
