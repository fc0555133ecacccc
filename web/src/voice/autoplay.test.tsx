// The voice auto-play switch: seeded from GET /api/settings/voice, saved back with PUT.
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { VoicePanel } from "../components/Voice";
import type { VoiceSettings } from "../protocol";
import { useVoice } from "../stores/voice";
import { type Call, mockFetch, waitUi } from "../testing/dom";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let calls: Call[];
let root: Root;
let host: HTMLDivElement;

function render(node: React.ReactNode): void {
  act(() => root.render(node));
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
    mockFetch(calls, (c) => {
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
    mockFetch(calls, () => undefined);
    render(<VoicePanel />);
    await waitUi(() => expect(useVoice.getState().settings).toBe("missing"));
    const toggle = host.querySelector<HTMLButtonElement>("[data-testid=autoplay]")!;
    act(() => toggle.click());
    expect(toggle.getAttribute("aria-checked")).toBe("true");
    expect(localStorage.getItem("jarvis_autoplay")).toBe("1");
    expect(calls.filter((c) => c.method === "PUT")).toHaveLength(0);
  });
});
