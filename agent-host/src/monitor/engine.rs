//! The pure part of an evaluation: observations in, state machines stepped, events decided.
//! No I/O here, so it is unit-testable and benchmarkable (`benches/monitor.rs`).

use std::collections::HashMap;

use serde_json::{Value, json};

use super::conditions::{Condition, Extractor, Phase, Track, Transition};
use super::config::{MonitorConfig, Rule};
use super::events::{self, Kind, NewEvent};
use super::runbooks;

/// The monitor's memory: what each snapshot showed and where each alert stands.
#[derive(Default)]
pub struct Engine {
    extractor: Extractor,
    pub(crate) tracks: HashMap<(Condition, String), Track>,
    pub(crate) temps: HashMap<String, f64>,
    pub(crate) temps_at: Option<f64>,
}

/// What one evaluation decided, before anything is stored or sent.
pub struct Assessment {
    pub events: Vec<NewEvent>,
    /// (condition, resource, value) worth storing.
    pub samples: Vec<(String, String, f64)>,
    pub candidates: Vec<runbooks::Candidate>,
}

impl Engine {
    /// Observe one snapshot and step every (condition, resource) state machine. Pure: no I/O.
    pub fn assess(&mut self, cfg: &MonitorConfig, snapshot: &Value, now: f64) -> Assessment {
        let flap = (cfg.notify.flap_threshold, cfg.notify.flap_window_secs as f64);
        let mut a = Assessment { events: Vec::new(), samples: Vec::new(), candidates: Vec::new() };
        let temps = std::mem::take(&mut self.temps);
        let obs = self.extractor.observe(snapshot, now, &temps);
        self.temps = temps;
        let tick = now.to_bits();
        // Base rules once per evaluation; per-resource rules only where an override matches.
        let bases: HashMap<Condition, Rule> = Condition::ALL.iter().map(|c| (*c, cfg.base_rule(*c))).collect();
        for o in obs {
            let owned;
            let (rule, overrides): (&Rule, Vec<String>) = if cfg.overrides.is_empty() {
                match bases.get(&o.condition) {
                    Some(r) => (r, Vec::new()),
                    None => continue,
                }
            } else {
                let (r, ov) = cfg.rule(o.condition, &o.resource);
                owned = r;
                (&owned, ov)
            };
            let ctx = Ctx { c: o.condition, resource: &o.resource, value: o.value, rule, overrides: &overrides };
            let key = (o.condition, o.resource.clone());
            if !rule.enabled {
                if let Some(t) = self.tracks.remove(&key)
                    && t.firing()
                {
                    a.events.push(alert_event(&ctx, Kind::Clear, &t, "the rule is disabled for it"));
                }
                continue;
            }
            let track = match self.tracks.get_mut(&key) {
                Some(t) => t,
                None => self.tracks.entry(key).or_insert_with(|| Track::new(String::new(), Default::default())),
            };
            track.last_tick = tick;
            let tr = track.step(o.value, rule, now, cfg.samples_kept, flap);
            if o.value > rule.clear.min(rule.fire) || track.phase != Phase::Ok {
                a.samples.push((o.condition.as_str().to_string(), o.resource.clone(), o.value));
            }
            track.label = o.label;
            track.target = o.target;
            track.note = o.note;
            let why = || describe(o.condition, o.value, rule, &track.note);
            let event = match tr {
                Transition::None => None,
                Transition::Fire { flapping: false, .. } | Transition::Escalate { .. } => {
                    Some(alert_event(&ctx, Kind::Alert, track, &why()))
                }
                Transition::Fire { flapping: true, .. } | Transition::Flapping => {
                    let why = format!(
                        "{}. It changed {} times in {} min (flapping): further changes stay silent until it is stable for that long",
                        why(),
                        track.crossings.len(),
                        cfg.notify.flap_window_secs / 60
                    );
                    let kind = if tr == Transition::Flapping { Kind::Info } else { Kind::Alert };
                    Some(alert_event(&ctx, kind, track, &why))
                }
                Transition::Clear => Some(alert_event(&ctx, Kind::Clear, track, &why())),
            };
            a.events.extend(event);
            if let Phase::Firing { since, .. } = track.phase
                && runbooks::has_runbook(o.condition)
                && !track.flapping
            {
                a.candidates.push(runbooks::Candidate {
                    condition: o.condition,
                    resource: o.resource.clone(),
                    since,
                    label: track.label.clone(),
                    target: track.target.clone(),
                });
            }
        }
        // Resources no longer reported: firing alerts clear, the rest is forgotten.
        let gone: Vec<_> = self.tracks.iter().filter(|(_, t)| t.last_tick != tick).map(|(k, _)| k.clone()).collect();
        for key in gone {
            if let Some(t) = self.tracks.remove(&key)
                && t.firing()
            {
                let (rule, overrides) = cfg.rule(key.0, &key.1);
                let last = t.samples.back().map(|s| s.value).unwrap_or(0.0);
                let ctx = Ctx { c: key.0, resource: &key.1, value: last, rule: &rule, overrides: &overrides };
                a.events.push(alert_event(&ctx, Kind::Clear, &t, "the cluster no longer reports it"));
            }
        }
        a
    }
}

/// A sentence about the value against the rule, e.g. `CPU at 95.2% (fires at 90%)`.
fn describe(c: Condition, value: f64, rule: &Rule, note: &str) -> String {
    if c.is_flag() {
        return if note.is_empty() { c.title().to_string() } else { note.to_string() };
    }
    let crit = rule.critical.map(|x| format!(", critical at {x}{}", c.unit())).unwrap_or_default();
    let mut s = format!("{} at {value:.1}{} (fires at {}{}{crit})", c.title(), c.unit(), rule.fire, c.unit());
    if !note.is_empty() {
        s.push_str(&format!("; {note}"));
    }
    s
}

/// What an alert event is about.
struct Ctx<'a> {
    c: Condition,
    resource: &'a str,
    value: f64,
    rule: &'a Rule,
    overrides: &'a [String],
}

fn alert_event(x: &Ctx<'_>, kind: Kind, t: &Track, why: &str) -> NewEvent {
    let (c, resource, value, rule, overrides) = (x.c, x.resource, x.value, x.rule, x.overrides);
    let severity = match (&kind, &t.phase) {
        (Kind::Clear, _) => "info".to_string(),
        (_, Phase::Firing { severity, .. }) => severity.clone(),
        _ => rule.severity.clone(),
    };
    let title = match kind {
        Kind::Clear => format!("{}: {} cleared", t.label, c.title()),
        _ => format!("{}: {}", t.label, c.title()),
    };
    let detail = match kind {
        Kind::Clear => format!("Back to normal ({why})."),
        _ => format!("{why}; held for at least {} s.", rule.sustain_secs),
    };
    let samples: Vec<Value> =
        t.samples.iter().rev().take(30).rev().map(|s| json!({"ts": events::rfc3339(s.ts), "value": s.value})).collect();
    NewEvent {
        kind,
        severity,
        resource: Some(resource.to_string()),
        condition: Some(c.as_str().to_string()),
        title,
        detail,
        auto: false,
        data: json!({"value": value, "rule": rule, "overrides": overrides, "samples": samples, "note": t.note, "target": &*t.target}),
    }
}
