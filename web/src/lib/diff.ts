// Structural sharing for JSON-like data: a new snapshot is merged into the previous one so that
// every entity whose data did not change keeps its object identity (memoised cards skip renders).

/** Deep equality for JSON values (objects, arrays, primitives). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(bo, k) || !jsonEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/**
 * Reconcile a keyed list: items equal to the previous item with the same key are replaced by
 * that previous object; if nothing changed (same keys, same order, same data) the previous
 * array itself is returned.
 */
export function reconcileList<T>(prev: readonly T[], next: readonly T[], key: (item: T) => string): readonly T[] {
  const byKey = new Map<string, T>();
  for (const p of prev) byKey.set(key(p), p);
  let same = prev.length === next.length;
  const out: T[] = new Array<T>(next.length);
  for (let i = 0; i < next.length; i++) {
    const n = next[i] as T;
    const old = byKey.get(key(n));
    const kept = old !== undefined && jsonEqual(old, n) ? old : n;
    out[i] = kept;
    if (same && prev[i] !== kept) same = false;
  }
  return same ? prev : out;
}
