export function pct(used: number | undefined, max: number | undefined): number {
  if (!max || !used) return 0;
  return Math.max(0, Math.min(100, (used / max) * 100));
}

export function bytes(n: number | undefined): string {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${u[i]}`;
}

export function duration(secs: number | undefined): string {
  if (!secs) return "—";
  const d = Math.floor(secs / 86400);
  const h = Math.floor((secs % 86400) / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

export function usd(n: number): string {
  return n < 0.01 && n > 0 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
}

/** GiB, compact: one decimal below 10. */
export function gib(n: number | undefined): string {
  const v = (n ?? 0) / 2 ** 30;
  return v < 10 ? v.toFixed(1) : v.toFixed(0);
}
