// REST calls to the agent host (same origin; the session cookie rides along).
import type { CostSummary, Explanation, Health, Memory, MonitorEvent, MonitorState, RrdPoint, Snapshot, Tier, VoiceSettings } from "./protocol";

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

/** A backend feature this agent host does not have (yet): the endpoint answers 404. */
export function isMissing(e: unknown): boolean {
  return e instanceof HttpError && e.status === 404;
}

const opts = { credentials: "same-origin" } as const;

function send(method: string, body?: unknown): RequestInit {
  return body === undefined
    ? { method, credentials: "same-origin" }
    : { method, credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

export async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  return json<T>(await fetch(path, init ?? opts));
}

export type Timeframe = "hour" | "day" | "week" | "month" | "year";
export const TIMEFRAMES: readonly Timeframe[] = ["hour", "day", "week", "month", "year"];

export async function rrd(target: { node: string } | { vmid: number }, timeframe: Timeframe): Promise<RrdPoint[]> {
  const q = new URLSearchParams({ timeframe });
  if ("vmid" in target) q.set("vmid", String(target.vmid));
  else q.set("node", target.node);
  return (await getJson<{ points: RrdPoint[] }>(`/api/rrd?${q}`)).points;
}

export interface PendingApproval {
  approval_id: string;
  session_id: string;
  tool: string;
  arguments: unknown;
  args_hash: string;
  tier: Tier;
  expires_in_secs: number;
}

export async function approvals(): Promise<PendingApproval[]> {
  return (await getJson<{ approvals: PendingApproval[] }>("/api/approvals")).approvals;
}

export const costs = (): Promise<CostSummary> => getJson<CostSummary>("/api/costs");

export type MemoryTier = Memory["tier"];

export async function memories(q: { tier?: MemoryTier | ""; q?: string; limit?: number }): Promise<Memory[]> {
  const p = new URLSearchParams();
  if (q.tier) p.set("tier", q.tier);
  if (q.q) p.set("q", q.q);
  p.set("limit", String(q.limit ?? 100));
  return (await getJson<{ memories: Memory[] }>(`/api/memory?${p}`)).memories;
}

export async function addMemory(text: string, kind: "fact" | "preference"): Promise<void> {
  await json<unknown>(await fetch("/api/memory", send("POST", { text, tier: "semantic", kind })));
}

export async function editMemory(id: number, patch: { text?: string; tier?: MemoryTier }): Promise<void> {
  await json<unknown>(await fetch(`/api/memory/${id}`, send("PATCH", patch)));
}

export async function deleteMemory(id: number): Promise<void> {
  const r = await fetch(`/api/memory/${id}`, send("DELETE"));
  if (!r.ok) throw new HttpError(r.status, await errorText(r));
}

export type EventFilter = "all" | "auto" | "alerts";

export async function events(filter: EventFilter, limit = 100): Promise<MonitorEvent[]> {
  return (await getJson<{ events: MonitorEvent[] }>(`/api/events?filter=${filter}&limit=${limit}`)).events;
}

export const monitor = (): Promise<MonitorState> => getJson<MonitorState>("/api/monitor");

/** PUT /api/monitor/autonomy → the monitor document with the new level. */
export async function setAutonomy(level: number): Promise<MonitorState> {
  return json<MonitorState>(await fetch("/api/monitor/autonomy", send("PUT", { level })));
}

/** Why does (or doesn't) `condition` fire for `resource`? */
export async function explain(condition: string, resource: string): Promise<Explanation> {
  const q = new URLSearchParams({ condition, resource });
  return getJson<Explanation>(`/api/monitor/explain?${q}`);
}

export const voiceSettings = (): Promise<VoiceSettings> => getJson<VoiceSettings>("/api/settings/voice");

export async function putVoiceSettings(patch: Partial<Omit<VoiceSettings, "engines">>): Promise<VoiceSettings> {
  return json<VoiceSettings>(await fetch("/api/settings/voice", send("PUT", patch)));
}

export async function stt(wav: Blob): Promise<{ text: string; engine: string; duration_ms: number }> {
  return json(await fetch("/api/stt", { method: "POST", credentials: "same-origin", headers: { "content-type": "audio/wav" }, body: wav }));
}

/** "Play this message again": the server's TTS as a WAV file. */
export async function tts(text: string): Promise<ArrayBuffer> {
  const r = await fetch("/api/tts", send("POST", { text }));
  if (!r.ok) throw new HttpError(r.status, await errorText(r));
  return r.arrayBuffer();
}
