// REST calls to the agent host (same origin; the session cookie rides along).
import type { Health, Snapshot } from "./protocol";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorText(r: Response): Promise<string> {
  try {
    const body: unknown = await r.json();
    if (typeof body === "object" && body !== null && typeof (body as { error?: unknown }).error === "string") {
      return (body as { error: string }).error;
    }
  } catch {
    /* not JSON */
  }
  return `${r.status} ${r.statusText}`;
}

async function json<T>(r: Response): Promise<T> {
  if (!r.ok) throw new HttpError(r.status, await errorText(r));
  return (await r.json()) as T;
}

export type LoginResult = { ok: true } | { ok: false; status: number; message: string };

export async function login(password: string): Promise<LoginResult> {
  const r = await fetch("/api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ password }),
    credentials: "same-origin",
  });
  if (r.ok) return { ok: true };
  const msg = await errorText(r);
  if (r.status === 429) return { ok: false, status: 429, message: `Too many attempts — ${msg}` };
  if (r.status === 401) return { ok: false, status: 401, message: "Wrong password." };
  return { ok: false, status: r.status, message: msg };
}

export async function logout(): Promise<void> {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
}

/** true: logged in, false: 401; throws when the agent host cannot be reached. */
export async function me(): Promise<boolean> {
  const r = await fetch("/api/me", { credentials: "same-origin" });
  if (r.status === 401) return false;
  if (!r.ok) throw new HttpError(r.status, await errorText(r));
  return true;
}

export async function health(): Promise<Health> {
  const r = await fetch("/api/health", { credentials: "same-origin" });
  // 503 still carries the component report.
  return (await r.json()) as Health;
}

export async function getKillSwitch(): Promise<boolean> {
  return (await json<{ on: boolean }>(await fetch("/api/killswitch", { credentials: "same-origin" }))).on;
}

export async function setKillSwitch(on: boolean): Promise<boolean> {
  const r = await fetch("/api/killswitch", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ on }),
    credentials: "same-origin",
  });
  return (await json<{ on: boolean }>(r)).on;
}

export async function getCluster(): Promise<Snapshot> {
  return json<Snapshot>(await fetch("/api/cluster", { credentials: "same-origin" }));
}

export interface StoredMessage {
  id: number;
  role: string;
  content: unknown;
  provider?: string | null;
}

export async function sessionMessages(id: string): Promise<StoredMessage[]> {
  const r = await fetch(`/api/sessions/${encodeURIComponent(id)}/messages`, { credentials: "same-origin" });
  return (await json<{ messages: StoredMessage[] }>(r)).messages;
}
