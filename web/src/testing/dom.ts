// Helpers for the component tests (jsdom + React act): a scripted `fetch`, and waiting for the UI.
import { act } from "react";
import { vi } from "vitest";

/** One request the component made. */
export interface Call {
  method: string;
  url: string;
  body: unknown;
}

/** The scripted answer to a request; `undefined` = 404. */
export type Handler = (c: Call) => { status: number; body?: unknown } | undefined;

/** Replace `fetch`: every request is recorded in `calls` and answered by `handler` as JSON. */
export function mockFetch(calls: Call[], handler: Handler): void {
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

/** Retry `check` while React settles (up to ~2 s), then let its failure through. */
export async function waitUi(check: () => void): Promise<void> {
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
