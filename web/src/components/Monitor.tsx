// The monitor settings view (RULES tab): the alert rules of GET /api/monitor, the active alerts,
// the autonomy level (PUT /api/monitor/autonomy) and "Why?" for any (condition, resource)
// through GET /api/monitor/explain — also offered by the FEED for events with a condition.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import * as api from "../api";
import { amount, AUTONOMY, overrideText, resourceIds, secsText, spark } from "../lib/monitor";
import type { ActiveAlert, Explanation, MonitorRule, Runbook } from "../protocol";
import { useCluster } from "../stores/cluster";
import { changeAutonomy, loadMonitor, useIntel } from "../stores/intel";
import { Unavailable } from "./Unavailable";

const SPARK_W = 240;
const SPARK_H = 48;

/** The samples of an explanation as a line, with the fire/clear thresholds dashed. */
export function Sparkline({ samples, fire, clear, unit }: { samples: Explanation["samples"]; fire: number | null; clear: number | null; unit: string }): ReactNode {
  if (samples.length === 0) return <p className="muted tiny">No samples kept for this resource.</p>;
  const s = spark(
    samples.map((x) => x.value),
    SPARK_W,
    SPARK_H,
    [fire, clear],
  );
  const [fy, cy] = s.lines;
  const last = samples[samples.length - 1];
  const label = `${samples.length} samples; latest ${amount(last?.value, unit)}${fire !== null ? `; fires at ${amount(fire, unit)}` : ""}`;
  return (
    <svg className="sparkline" viewBox={`0 0 ${SPARK_W} ${SPARK_H}`} preserveAspectRatio="none" role="img" aria-label={label} data-testid="sparkline">
      {fy != null && <line className="spark-fire" x1={0} x2={SPARK_W} y1={fy} y2={fy} />}
      {cy != null && <line className="spark-clear" x1={0} x2={SPARK_W} y1={cy} y2={cy} />}
      <polyline className="spark-line" points={s.points} />
    </svg>
  );
}

type Loaded = { state: "loading" } | { state: "missing" } | { state: "error"; message: string } | { state: "ok"; data: Explanation };

/** GET /api/monitor/explain for one (condition, resource), rendered. */
export function Explain({ condition, resource }: { condition: string; resource: string }): ReactNode {
  const [got, setGot] = useState<Loaded>({ state: "loading" });
  const rule = useIntel((s) => (s.monitor && s.monitor !== "missing" ? s.monitor.rules.find((r) => r.condition === condition) : undefined));
  useEffect(() => {
    let alive = true;
    setGot({ state: "loading" });
    api.explain(condition, resource).then(
      (data) => alive && setGot({ state: "ok", data }),
      (e: unknown) => alive && setGot(api.isMissing(e) ? { state: "missing" } : { state: "error", message: e instanceof Error ? e.message : String(e) }),
    );
    return () => {
      alive = false;
    };
  }, [condition, resource]);
  const unit = rule?.unit ?? "";
  const flag = rule?.flag === true;
  return (
    <section className="explain" aria-live="polite" aria-label={`why: ${condition} on ${resource}`} data-testid="explain">
      <h4 className="explain-title">
        Why? <code>{condition}</code> on <code>{resource}</code>{" "}
        {got.state === "ok" &&
          (got.data.firing ? (
            <span className="badge bad" data-testid="explain-firing">
              FIRING
            </span>
          ) : (
            <span className="badge ok" data-testid="explain-firing">
              NOT FIRING
            </span>
          ))}
      </h4>
      {got.state === "loading" && <p className="muted tiny">asking the monitor…</p>}
      {got.state === "missing" && <Unavailable what="Explanations (GET /api/monitor/explain) are" />}
      {got.state === "error" && (
        <p className="error tiny" role="alert">
          {got.message}
        </p>
      )}
      {got.state === "ok" && (
        <>
          <p className="explanation" data-testid="explanation">
            {got.data.explanation}
          </p>
          <dl className="kv thresholds">
            <dt>rule</dt>
            <dd>{got.data.thresholds.enabled ? "enabled" : "disabled"}</dd>
            {!flag && (
              <>
                <dt>fires at</dt>
                <dd>
                  {amount(got.data.thresholds.fire, unit)}
                  {got.data.thresholds.critical != null && ` (critical ${amount(got.data.thresholds.critical, unit)})`}
                </dd>
                <dt>clears at</dt>
                <dd>{amount(got.data.thresholds.clear, unit)}</dd>
              </>
            )}
            <dt>held for</dt>
            <dd>
              {secsText(got.data.thresholds.sustain_secs)} / clear after {secsText(got.data.thresholds.clear_secs)}
            </dd>
            <dt>severity</dt>
            <dd>{got.data.thresholds.severity}</dd>
          </dl>
          <Sparkline samples={got.data.samples} fire={flag ? null : got.data.thresholds.fire} clear={flag ? null : got.data.thresholds.clear} unit={unit} />
          {got.data.samples.length > 0 && (
            <details className="samples">
              <summary>
                {got.data.samples.length} sample{got.data.samples.length === 1 ? "" : "s"}
              </summary>
              <ol className="samples-list tiny">
                {got.data.samples
                  .slice(-20)
                  .reverse()
                  .map((x) => (
                    <li key={x.ts}>
                      <time dateTime={x.ts}>{new Date(x.ts).toLocaleTimeString()}</time> {flag ? (x.value >= 1 ? "yes" : "no") : amount(x.value, unit)}
                    </li>
                  ))}
              </ol>
            </details>
          )}
        </>
      )}
    </section>
  );
}

function AutonomySelect({ level }: { level: number }): ReactNode {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const id = useId();
  async function change(next: number) {
    setBusy(true);
    setErr(null);
    try {
      await changeAutonomy(next);
    } catch (e) {
      setErr(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="autonomy-select">
      <label htmlFor={id}>autonomy level</label>{" "}
      <select id={id} value={level} disabled={busy} onChange={(e) => void change(Number(e.target.value))} data-testid="autonomy-select">
        {AUTONOMY.map((name, i) => (
          <option key={name} value={i}>
            L{i} — {name}
          </option>
        ))}
      </select>
      {err && (
        <span className="error tiny" role="alert">
          {" "}
          autonomy not changed: {err}
        </span>
      )}
    </div>
  );
}

function thresholdCells(r: MonitorRule): ReactNode {
  if (r.flag) {
    return (
      <>
        <td colSpan={3} className="muted">
          yes/no condition
        </td>
      </>
    );
  }
  return (
    <>
      <td className="num">{amount(r.fire, r.unit)}</td>
      <td className="num">{amount(r.critical, r.unit)}</td>
      <td className="num">{amount(r.clear, r.unit)}</td>
    </>
  );
}

function RulesTable({ rules, onWhy }: { rules: readonly MonitorRule[]; onWhy: (condition: string) => void }): ReactNode {
  return (
    <div className="table-scroll">
      <table className="rules" data-testid="rules-table">
        <caption className="sr-only">Alert rules</caption>
        <thead>
          <tr>
            <th scope="col">condition</th>
            <th scope="col">on</th>
            <th scope="col">fire</th>
            <th scope="col">critical</th>
            <th scope="col">clear</th>
            <th scope="col">sustain</th>
            <th scope="col">clear after</th>
            <th scope="col">severity</th>
            <th scope="col">overrides</th>
            <th scope="col">
              <span className="sr-only">explain</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rules.map((r) => (
            <tr key={r.condition} data-testid="rule-row" data-condition={r.condition} className={r.enabled ? "" : "disabled"}>
              <th scope="row">
                <code>{r.condition}</code>
                <div className="muted tiny">{r.title}</div>
              </th>
              <td>{r.enabled ? <span className="badge ok">ON</span> : <span className="badge muted">OFF</span>}</td>
              {thresholdCells(r)}
              <td className="dur">{secsText(r.sustain_secs)}</td>
              <td className="dur">{secsText(r.clear_secs)}</td>
              <td>
                <span className={`sev sev-${r.severity}`}>{r.severity}</span>
              </td>
              <td className="tiny">
                {r.overrides.length === 0 ? (
                  <span className="muted">none</span>
                ) : (
                  <ul className="overrides">
                    {r.overrides.map((o) => (
                      <li key={o.resource}>{overrideText(o, r)}</li>
                    ))}
                  </ul>
                )}
              </td>
              <td>
                <button type="button" className="btn small" onClick={() => onWhy(r.condition)} aria-label={`why? ${r.condition} — pick a resource`}>
                  Why?
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ActiveAlerts({ active, rules, onWhy }: { active: readonly ActiveAlert[]; rules: readonly MonitorRule[]; onWhy: (a: ActiveAlert) => void }): ReactNode {
  if (active.length === 0) return <p className="muted tiny" data-testid="no-active">No alert is active.</p>;
  return (
    <ul className="active-alerts" data-testid="active-alerts">
      {active.map((a) => {
        const rule = rules.find((r) => r.condition === a.condition);
        return (
          <li key={`${a.condition} ${a.resource}`} className={`active-alert sev-${a.severity ?? "warning"}`} data-testid="active-alert">
            <span className={`badge ${a.severity === "critical" ? "bad" : "warn"}`}>{(a.severity ?? "warning").toUpperCase()}</span>{" "}
            <strong>{rule?.title ?? a.condition}</strong> · {a.label ?? a.resource}{" "}
            <span className="muted tiny">
              <code>{a.resource}</code> since <time dateTime={a.since}>{new Date(a.since).toLocaleString()}</time>
              {!rule?.flag && a.value != null && `, value ${amount(a.value, rule?.unit ?? "")}`}
            </span>
            {a.flapping === true && <span className="badge warn">FLAPPING</span>}{" "}
            <button type="button" className="btn small" onClick={() => onWhy(a)} aria-label={`why? ${a.condition} on ${a.resource}`}>
              Why?
            </button>
          </li>
        );
      })}
    </ul>
  );
}

function Runbooks({ runbooks, rules }: { runbooks: readonly Runbook[]; rules: readonly MonitorRule[] }): ReactNode {
  return (
    <ul className="runbooks tiny" data-testid="runbooks">
      {runbooks.map((r) => (
        <li key={r.name} data-testid="runbook" data-name={r.name} className={r.enabled ? "" : "disabled"}>
          <span className={`badge ${r.enabled ? "ok" : "muted"}`}>{r.enabled ? "ON" : "OFF"}</span>{" "}
          <code>{r.name}</code>: {rules.find((x) => x.condition === r.condition)?.title ?? r.condition} →{" "}
          <code>{r.tool}</code>
        </li>
      ))}
    </ul>
  );
}

export function MonitorView(): ReactNode {
  const monitor = useIntel((s) => s.monitor);
  const nodes = useCluster((s) => s.nodes);
  const guests = useCluster((s) => s.guests);
  const storage = useCluster((s) => s.storage);
  const [condition, setCondition] = useState("cpu");
  const [resource, setResource] = useState("");
  const [target, setTarget] = useState<{ condition: string; resource: string } | null>(null);
  const resourceInput = useRef<HTMLInputElement>(null);
  const explainBox = useRef<HTMLDivElement>(null);
  const formId = useId();

  // Fresh on open and every 15 s while shown (monitor events also reload it: stores/intel).
  useEffect(() => {
    void loadMonitor();
    const t = setInterval(() => void loadMonitor(), 15_000);
    return () => clearInterval(t);
  }, []);

  const ids = resourceIds(nodes, guests, storage);
  const why = (c: string, r: string) => {
    setCondition(c);
    setResource(r);
    setTarget({ condition: c, resource: r });
    // The answer's box takes focus (and scrolls into view); it is announced as it arrives.
    requestAnimationFrame(() => explainBox.current?.focus());
  };

  if (monitor === "missing") return <Unavailable what="The monitor (GET /api/monitor) is" />;
  if (monitor === null)
    return (
      <p className="muted tiny" role="status">
        loading the monitor…
      </p>
    );
  const rules = monitor.rules;
  return (
    <div className="monitor-view" data-testid="monitor-view">
      <div className="monitor-head">
        <AutonomySelect level={monitor.autonomy} />
        <span className="muted tiny">{AUTONOMY[monitor.autonomy] ?? ""}</span>
        {monitor.kill_switch && <span className="badge bad">KILL SWITCH: no autonomous action</span>}
        {monitor.enabled === false && <span className="badge warn">MONITOR DISABLED</span>}
        {monitor.notify && (
          <span className="muted tiny">
            {monitor.notify.channels} notification channel{monitor.notify.channels === 1 ? "" : "s"}
          </span>
        )}
      </div>
      {monitor.notify && monitor.notify.errors.length > 0 && (
        <ul className="error tiny notify-errors">
          {monitor.notify.errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      )}
      <h3 className="sub-title">ACTIVE ALERTS</h3>
      <ActiveAlerts active={monitor.active} rules={rules} onWhy={(a) => why(a.condition, a.resource)} />
      {monitor.runbooks && monitor.runbooks.length > 0 && (
        <>
          <h3 className="sub-title">RUNBOOKS</h3>
          <p className="muted tiny">
            What Jarvis fixes on its own at L3/L4 (GREEN/YELLOW tools only, through the gate); switched in{" "}
            <code>[monitor.actions.runbooks]</code>.
          </p>
          <Runbooks runbooks={monitor.runbooks} rules={monitor.rules} />
        </>
      )}
      <h3 className="sub-title">RULES</h3>
      <RulesTable
        rules={rules}
        onWhy={(c) => {
          setCondition(c);
          resourceInput.current?.focus();
        }}
      />
      <h3 className="sub-title" id={`${formId}-title`}>
        WHY?
      </h3>
      <form
        className="why-form"
        aria-labelledby={`${formId}-title`}
        onSubmit={(e) => {
          e.preventDefault();
          const r = resource.trim();
          if (r) why(condition, r);
        }}
      >
        <label>
          condition{" "}
          <select value={condition} onChange={(e) => setCondition(e.target.value)} aria-label="condition">
            {rules.map((r) => (
              <option key={r.condition} value={r.condition}>
                {r.condition}
              </option>
            ))}
          </select>
        </label>
        <label>
          resource{" "}
          <input
            ref={resourceInput}
            aria-label="resource"
            list={`${formId}-resources`}
            placeholder={ids[0] ?? "node/pve1"}
            value={resource}
            onChange={(e) => setResource(e.target.value)}
            spellCheck={false}
            autoComplete="off"
          />
        </label>
        <datalist id={`${formId}-resources`}>
          {ids.map((id) => (
            <option key={id} value={id} />
          ))}
        </datalist>
        <button type="submit" className="btn small primary" disabled={!resource.trim()}>
          Why?
        </button>
      </form>
      <div ref={explainBox} tabIndex={-1} className="explain-box">
        {target && <Explain key={`${target.condition} ${target.resource}`} condition={target.condition} resource={target.resource} />}
      </div>
    </div>
  );
}
