//! "Why did (or didn't) this alert fire?": an answer built only from the samples the monitor
//! kept (in memory, else stored) and the thresholds that applied to that resource.

use serde_json::{Value, json};

use super::Monitor;
use super::conditions::{Condition, Phase, Sample};
use super::config::Rule;
use super::events::{self, rfc3339};

fn fmt_value(c: Condition, v: f64) -> String {
    if c.is_flag() { if v >= 1.0 { "yes".into() } else { "no".into() } } else { format!("{v:.1}{}", c.unit()) }
}

/// The sentence(s) for one condition and resource; pure so it can be tested.
#[allow(clippy::too_many_arguments)]
pub fn sentence(
    c: Condition,
    rule: &Rule,
    overrides: &[String],
    phase: Option<&Phase>,
    samples: &[Sample],
    flapping: bool,
    note: &str,
    now: f64,
) -> String {
    let u = c.unit();
    let mut out = Vec::new();
    if !rule.enabled {
        out.push(format!("The {} rule is disabled for this resource, so it never fires.", c.as_str()));
        return out.join(" ");
    }
    let rule_text = if c.is_flag() {
        format!(
            "It fires when the answer is yes for {} s and clears after {} s of no.",
            rule.sustain_secs, rule.clear_secs
        )
    } else {
        let crit = rule.critical.map(|x| format!(" (critical at {x}{u})")).unwrap_or_default();
        format!(
            "It fires at {}{u}{crit} held for {} s, and clears at or below {}{u} held for {} s.",
            rule.fire,
            rule.sustain_secs,
            rule.clear.min(rule.fire),
            rule.clear_secs
        )
    };
    let last = samples.last();
    let latest =
        last.map(|s| format!("{} at {}", fmt_value(c, s.value), rfc3339(s.ts))).unwrap_or_else(|| "none".into());
    match phase {
        None => out.push(format!(
            "There is no current observation (the cluster does not report this, or no evaluation ran yet). Latest stored sample: {latest}."
        )),
        Some(Phase::Firing { since, severity, clearing_since }) => {
            out.push(format!("Firing ({severity}) since {}; latest value {latest}.", rfc3339(*since)));
            if let Some(cs) = clearing_since {
                let left = (rule.clear_secs as f64 - (now - cs)).max(0.0);
                out.push(format!("Back within limits since {}; it clears in {left:.0} s if it stays there.", rfc3339(*cs)));
            }
        }
        Some(Phase::Pending { since }) => {
            let left = (rule.sustain_secs as f64 - (now - since)).max(0.0);
            out.push(format!(
                "Not firing yet: over the threshold since {} (latest {latest}); it fires in {left:.0} s if it stays there.",
                rfc3339(*since)
            ));
        }
        Some(Phase::Ok) => {
            out.push(format!("Not firing: latest value {latest} is below the threshold."));
            if let Some(peak) = samples.iter().filter(|s| s.value >= rule.fire).max_by(|a, b| a.value.total_cmp(&b.value))
            {
                out.push(format!(
                    "It reached {} at {} but did not stay there for {} s.",
                    fmt_value(c, peak.value),
                    rfc3339(peak.ts),
                    rule.sustain_secs
                ));
            }
        }
    }
    if !note.is_empty() {
        out.push(format!("Observed: {note}."));
    }
    if flapping {
        out.push("It is flapping: changes stay silent until it has been stable for the flap window.".into());
    }
    out.push(rule_text);
    if !overrides.is_empty() {
        out.push(format!("Per-resource overrides applied: {}.", overrides.join(", ")));
    }
    out.join(" ")
}

fn thresholds(rule: &Rule, overrides: &[String]) -> Value {
    json!({
        "enabled": rule.enabled, "fire": rule.fire, "critical": rule.critical, "clear": rule.clear.min(rule.fire),
        "sustain_secs": rule.sustain_secs, "clear_secs": rule.clear_secs, "severity": rule.severity,
        "overrides": overrides,
    })
}

/// `GET /api/monitor/explain` (None when the condition name is unknown).
pub async fn explain(m: &Monitor, condition: &str, resource: &str) -> Option<Value> {
    let c = Condition::parse(condition)?;
    let (rule, overrides) = m.cfg.rule(c, resource);
    let track = m.track(c, resource);
    let (samples, phase, flapping, note) = match &track {
        Some(t) => (t.samples.iter().copied().collect::<Vec<_>>(), Some(t.phase.clone()), t.flapping, t.note.clone()),
        None => {
            let stored = events::samples(&m.agent.store, condition, resource, 120).await.unwrap_or_default();
            (stored.into_iter().map(|(ts, value)| Sample { ts, value }).collect(), None, false, String::new())
        }
    };
    // Times are as of the last evaluation, so the answer matches the samples shown.
    let now = samples.last().map_or_else(events::now_unix, |s| s.ts);
    let mut explanation = sentence(c, &rule, &overrides, phase.as_ref(), &samples, flapping, &note, now);
    if let Ok(Some((ev, _))) = events::latest_data(&m.agent.store, condition, resource).await {
        explanation.push_str(&format!(" Last event: {} at {} — {}.", ev.kind, ev.ts, ev.title));
    }
    Some(json!({
        "condition": c.as_str(),
        "resource": resource,
        "firing": matches!(phase, Some(Phase::Firing { .. })),
        "explanation": explanation,
        "samples": samples.iter().map(|s| json!({"ts": rfc3339(s.ts), "value": s.value})).collect::<Vec<_>>(),
        "thresholds": thresholds(&rule, &overrides),
    }))
}

/// The rules as `GET /api/monitor` lists them.
pub fn rules(m: &Monitor) -> Vec<Value> {
    Condition::ALL
        .iter()
        .map(|c| {
            let r = m.cfg.base_rule(*c);
            let overrides: Vec<Value> = m
                .cfg
                .overrides
                .iter()
                .filter(|o| o.condition.is_empty() || o.condition == c.as_str())
                .map(|o| {
                    json!({"resource": o.resource, "enabled": o.enabled, "fire": o.fire, "critical": o.critical,
                           "clear": o.clear, "sustain_secs": o.sustain_secs, "clear_secs": o.clear_secs, "severity": o.severity})
                })
                .collect();
            json!({
                "condition": c.as_str(), "title": c.title(), "unit": c.unit().trim(), "flag": c.is_flag(),
                "enabled": r.enabled, "fire": r.fire, "critical": r.critical, "clear": r.clear.min(r.fire),
                "sustain_secs": r.sustain_secs, "clear_secs": r.clear_secs, "severity": r.severity,
                "overrides": overrides,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::config::MonitorConfig;

    #[test]
    fn explanations_say_why_it_did_or_did_not_fire() {
        let rule = MonitorConfig::default().base_rule(Condition::Cpu);
        let s = |ts, value| Sample { ts, value };
        let text = sentence(
            Condition::Cpu,
            &rule,
            &[],
            Some(&Phase::Ok),
            &[s(0.0, 50.0), s(15.0, 96.0), s(30.0, 60.0)],
            false,
            "",
            30.0,
        );
        assert!(text.contains("Not firing"), "{text}");
        assert!(text.contains("reached 96.0% at 1970-01-01T00:00:15Z but did not stay there for 300 s"), "{text}");
        let text = sentence(
            Condition::Cpu,
            &rule,
            &[],
            Some(&Phase::Pending { since: 0.0 }),
            &[s(100.0, 95.0)],
            false,
            "",
            100.0,
        );
        assert!(text.contains("fires in 200 s"), "{text}");
        let firing = Phase::Firing { since: 10.0, severity: "critical".into(), clearing_since: None };
        let text =
            sentence(Condition::Cpu, &rule, &["node/*".into()], Some(&firing), &[s(10.0, 99.0)], false, "", 20.0);
        assert!(text.contains("Firing (critical)") && text.contains("overrides applied: node/*"), "{text}");
        let off = Rule { enabled: false, ..rule };
        assert!(sentence(Condition::Cpu, &off, &[], None, &[], false, "", 0.0).contains("disabled"));
    }
}
