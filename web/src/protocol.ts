// Types of the agent host's WebSocket protocol and REST bodies (docs/protocol.md).

export type Tier = "green" | "yellow" | "red" | "black";

/** A row of Proxmox's /cluster/resources as mcp-proxmox publishes it. */
export interface Resource {
  id: string;
  type: string;
  node?: string | null;
  vmid?: number | null;
  name?: string | null;
  status?: string | null;
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  disk?: number;
  maxdisk?: number;
  uptime?: number;
  template?: boolean;
  tags?: string | null;
  lock?: string | null;
  pool?: string | null;
  hastate?: string | null;
  storage?: string | null;
  content?: string | null;
  shared?: boolean;
  plugintype?: string | null;
  /** Optional extras (not in /cluster/resources today). */
  temperature?: number | null;
}

export interface ClusterTask {
  upid?: string;
  node?: string;
  type?: string;
  id?: string;
  user?: string;
  status?: string;
  starttime?: number;
  endtime?: number;
}

export interface ClusterDoc {
  name: string;
  quorate?: boolean | null;
  nodes?: Resource[];
  guests?: Resource[];
  storage?: Resource[];
  tasks?: ClusterTask[] | null;
  error?: string;
}

export interface Snapshot {
  generated_at?: number;
  clusters: ClusterDoc[];
}

export type ServerMsg =
  | { type: "accepted"; session_id: string }
  | { type: "cluster"; snapshot: Snapshot }
  | { type: "joined"; session_id: string }
  | { type: "token"; session_id: string; text: string }
  | { type: "tool_start"; session_id: string; call_id: string; tool: string; tier: Tier; arguments: unknown }
  | { type: "tool_progress"; session_id: string; call_id: string; progress: number; message?: string | null }
  | { type: "tool_result"; session_id: string; call_id: string; tool: string; ok: boolean; untrusted: boolean; text: string }
  | {
      type: "approval_required";
      session_id: string;
      approval_id: string;
      call_id: string;
      tool: string;
      tier: Tier;
      arguments: unknown;
      args_hash: string;
      summary: string;
      reason: string;
      expires_in_secs: number;
    }
  | { type: "approval_resolved"; session_id: string; approval_id: string; verdict: "approved" | "denied" | "expired" }
  | { type: "approval_ack"; approval_id: string; ok: boolean; error?: string | null }
  | { type: "notice"; session_id: string; text: string }
  | {
      type: "done";
      session_id: string;
      usage: { input_tokens?: number; output_tokens?: number };
      cost_usd: number | null;
      timing: { received_ms?: number; llm_start_ms?: number; first_token_ms?: number; llm_done_ms?: number; total_ms?: number };
      iterations: number;
      provider?: string | null;
      model?: string | null;
      route?: Route | null;
    }
  | { type: "error"; session_id?: string; message: string }
  | { type: "pong" }
  | ({ type: "route"; session_id: string } & Route)
  | { type: "cost"; summary: CostSummary }
  | { type: "event"; event: MonitorEvent }
  | {
      type: "speech";
      session_id: string;
      response_id: string;
      index: number;
      text: string;
      engine: string;
      codec: "wav" | "opus";
      sample_rate: number;
    }
  | { type: "speech_end"; session_id: string; response_id: string; count: number; engine: string }
  | { type: "transcript"; text: string; engine: string };

/** Which model answers a turn and why (WS `route`, `done.route`). */
export interface Route {
  provider: string;
  model: string;
  reason: string;
  rule?: string | null;
}

export interface CostBucket {
  usd: number;
  requests: number;
  input_tokens: number;
  output_tokens: number;
}

export interface CostSummary {
  currency: string;
  today: CostBucket;
  week: CostBucket;
  month: CostBucket;
  budget: { daily_usd: number | null; monthly_usd: number | null; daily_used: number; monthly_used: number; state: "ok" | "warn" | "over" };
  by_provider: { provider: string; model: string; requests: number; input_tokens: number; output_tokens: number; usd: number }[];
  recent: { ts: string; session_id: string; provider: string; model: string; input_tokens: number; output_tokens: number; usd: number }[];
  saved_usd: number;
}

export interface MonitorEvent {
  id: number;
  ts: string;
  kind: "alert" | "clear" | "action" | "verify" | "escalation" | "info";
  severity: "info" | "warning" | "critical";
  resource: string | null;
  condition: string | null;
  title: string;
  detail: string;
  auto: boolean;
}

export interface Memory {
  id: number;
  tier: "conversation" | "episodic" | "semantic";
  kind: string;
  text: string;
  source: string;
  session_id: string | null;
  created_at: string;
  expires_at: string | null;
}

/** Keys of a rule that a per-resource override may replace. */
export interface RuleThresholds {
  enabled: boolean;
  fire: number;
  critical: number | null;
  clear: number;
  sustain_secs: number;
  clear_secs: number;
  severity: "info" | "warning" | "critical";
}

/** `{"resource", …keys that override…}` */
export type RuleOverride = { resource: string } & Partial<RuleThresholds>;

export interface MonitorRule extends RuleThresholds {
  condition: string;
  title: string;
  unit: string;
  /** A yes/no condition (node unreachable, backup failed…): the thresholds are 1/0. */
  flag?: boolean;
  overrides: RuleOverride[];
}

export interface ActiveAlert {
  condition: string;
  resource: string;
  since: string;
  value: number | null;
  severity?: "info" | "warning" | "critical";
  label?: string;
  flapping?: boolean;
}

/** A runbook (`monitor.actions.runbooks`): the condition it answers and the tool it calls. */
export interface Runbook {
  name: string;
  condition: string;
  tool: string;
  enabled: boolean;
}

export interface MonitorState {
  autonomy: number;
  kill_switch: boolean;
  enabled?: boolean;
  rules: MonitorRule[];
  /** Absent from agent hosts older than the runbook switches. */
  runbooks?: Runbook[];
  active: ActiveAlert[];
  notify?: { channels: number; errors: string[] };
}

/** GET /api/monitor/explain */
export interface Explanation {
  condition: string;
  resource: string;
  firing: boolean;
  explanation: string;
  samples: { ts: string; value: number }[];
  thresholds: RuleThresholds & { overrides?: RuleOverride[] };
}

export interface VoiceEngine {
  id: string;
  kind: string;
  healthy: boolean;
  voices: string[];
}

export interface VoiceSettings {
  engine: string | null;
  voice: string | null;
  speed: number;
  autoplay: boolean;
  opus: boolean;
  engines: VoiceEngine[];
}

export interface RrdPoint {
  time: number;
  cpu?: number;
  mem?: number;
  maxmem?: number;
  netin?: number;
  netout?: number;
  [k: string]: number | undefined;
}

export type ClientMsg =
  | { type: "send"; text: string; session_id?: string }
  | { type: "join"; session_id: string }
  | { type: "tool"; tool: string; arguments: Record<string, unknown>; session_id?: string }
  | { type: "approve"; approval_id: string; session_id: string; args_hash?: string }
  | { type: "deny"; approval_id: string; session_id: string }
  | { type: "cancel" }
  | { type: "ping" }
  | { type: "audio_prefs"; enabled: boolean; codec: "opus" | "wav" }
  | { type: "stt"; audio_b64: string; content_type: string; send: boolean };

const TYPES = new Set([
  "accepted", "cluster", "joined", "token", "tool_start", "tool_progress", "tool_result", "approval_required",
  "approval_resolved", "approval_ack", "notice", "done", "error", "pong", "route", "cost", "event", "speech",
  "speech_end", "transcript",
]);

/** Parse one text frame; unknown or malformed messages yield null (the server may be newer). */
export function parseServerMsg(raw: string): ServerMsg | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const t = (v as { type?: unknown }).type;
  if (typeof t !== "string" || !TYPES.has(t)) return null;
  return v as ServerMsg;
}

export interface Health {
  status: string;
  components?: {
    database?: { ok: boolean };
    mcp?: { name: string; up: boolean }[];
    llm?: { configured: boolean; provider?: string; model?: string };
  };
}
