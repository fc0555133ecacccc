// RRD points (GET /api/rrd) → uPlot's columnar data: time, CPU %, memory %, net in, net out.
import type { RrdPoint } from "../protocol";

export type Columns = [number[], (number | null)[], (number | null)[], (number | null)[], (number | null)[]];

const num = (v: number | undefined): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

export function toColumns(points: readonly RrdPoint[]): Columns {
  const sorted = points.filter((p) => Number.isFinite(p.time)).slice().sort((a, b) => a.time - b.time);
  const out: Columns = [[], [], [], [], []];
  for (const p of sorted) {
    out[0].push(p.time);
    const cpu = num(p.cpu);
    out[1].push(cpu === null ? null : cpu * 100);
    const mem = num(p.mem);
    const max = num(p.maxmem);
    out[2].push(mem !== null && max ? (mem / max) * 100 : null);
    out[3].push(num(p.netin));
    out[4].push(num(p.netout));
  }
  return out;
}
