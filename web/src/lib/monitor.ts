// Helpers of the monitor settings view: thresholds as text, the resource ids the monitor knows
// (as in Proxmox: node/pve1, qemu/101, lxc/200, storage/nas for shared storage,
// storage/pve1/local), and the geometry of the explanation's sparkline.
import type { MonitorRule, Resource, RuleOverride } from "../protocol";

/** Names of the autonomy levels 0..4 (PUT /api/monitor/autonomy). */
export const AUTONOMY: readonly string[] = ["observe", "suggest", "safe auto", "auto + approval", "full auto"];

/** A number as the monitor reports it: at most one decimal, the unit appended. */
export function amount(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const n = Number.isInteger(v) ? String(v) : v.toFixed(1);
  const u = unit.trim();
  return u === "" ? n : u === "%" ? `${n}%` : `${n} ${u}`;
}

/** Seconds as "0 s", "45 s", "5 min", "90 s", "2 h". */
export function secsText(s: number): string {
  if (s >= 3600 && s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

const OVERRIDE_KEYS = ["enabled", "fire", "critical", "clear", "sustain_secs", "clear_secs", "severity"] as const;

/** "node/pve3: fire 95%, sustain 10 min" */
export function overrideText(o: RuleOverride, rule: Pick<MonitorRule, "unit" | "flag">): string {
  const parts: string[] = [];
  for (const k of OVERRIDE_KEYS) {
    const v = o[k];
    if (v === undefined) continue;
    if (k === "enabled") parts.push(v ? "enabled" : "disabled");
    else if (k === "severity") parts.push(`severity ${String(v)}`);
    else if (k === "sustain_secs") parts.push(`sustain ${secsText(Number(v))}`);
    else if (k === "clear_secs") parts.push(`clear after ${secsText(Number(v))}`);
    else parts.push(`${k} ${rule.flag ? String(v) : amount(v as number | null, rule.unit)}`);
  }
  return `${o.resource}: ${parts.length ? parts.join(", ") : "no change"}`;
}

/** The monitor's resource ids for what the cluster column shows, deduplicated, nodes first. */
export function resourceIds(nodes: readonly Resource[], guests: readonly Resource[], storage: readonly Resource[]): string[] {
  const out = new Set<string>();
  for (const n of nodes) if (n.node) out.add(`node/${n.node}`);
  for (const g of guests) if (g.vmid != null) out.add(`${g.type === "lxc" ? "lxc" : "qemu"}/${g.vmid}`);
  for (const s of storage) {
    if (!s.storage) continue;
    out.add(s.shared ? `storage/${s.storage}` : s.node ? `storage/${s.node}/${s.storage}` : s.id);
  }
  return [...out];
}

export interface Spark {
  /** `x,y x,y …` for an SVG polyline. */
  points: string;
  /** y of each requested reference line (null when outside the drawn range). */
  lines: (number | null)[];
  min: number;
  max: number;
}

/**
 * Map samples (oldest first) onto a width×height box. The value range covers the samples and
 * the reference values (thresholds) so the lines can be drawn against the data.
 */
export function spark(values: readonly number[], width: number, height: number, refs: readonly (number | null)[] = []): Spark {
  const finite = values.filter(Number.isFinite);
  const all = [...finite, ...refs.filter((r): r is number => r !== null && Number.isFinite(r))];
  let min = all.length ? Math.min(...all) : 0;
  let max = all.length ? Math.max(...all) : 1;
  if (max === min) {
    max += 1;
    min -= 1;
  }
  const pad = 2;
  const y = (v: number) => pad + (1 - (v - min) / (max - min)) * (height - 2 * pad);
  const step = finite.length > 1 ? width / (finite.length - 1) : 0;
  const points = finite.map((v, i) => `${(finite.length > 1 ? i * step : width / 2).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  return { points, lines: refs.map((r) => (r === null || !Number.isFinite(r) ? null : y(r))), min, max };
}
