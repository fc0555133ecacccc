//! The state machine of one (condition, resource): sustain delay before firing, hysteresis
//! and a delay before clearing, severity escalation, and flapping detection.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use super::conditions::Target;
use super::config::Rule;

/// Where an alert stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    Ok,
    Pending { since: f64 },
    Firing { since: f64, severity: String, clearing_since: Option<f64> },
}

/// What one evaluation changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    None,
    Fire {
        severity: String,
        flapping: bool,
    },
    Escalate {
        severity: String,
    },
    Clear,
    /// It started flapping while already firing: say so once, then stay silent.
    Flapping,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub ts: f64,
    pub value: f64,
}

/// The state of one (condition, resource).
#[derive(Debug, Clone)]
pub struct Track {
    pub phase: Phase,
    pub samples: VecDeque<Sample>,
    /// Times the raw value crossed from good to bad or back.
    pub crossings: VecDeque<f64>,
    raw_bad: Option<bool>,
    pub flapping: bool,
    pub label: String,
    pub note: String,
    pub target: Arc<Target>,
    pub last_tick: u64,
}

fn rank(sev: &str) -> u8 {
    match sev {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

impl Track {
    pub fn new(label: String, target: Arc<Target>) -> Self {
        Self {
            phase: Phase::Ok,
            samples: VecDeque::new(),
            crossings: VecDeque::new(),
            raw_bad: None,
            flapping: false,
            label,
            note: String::new(),
            target,
            last_tick: 0,
        }
    }

    pub fn severity_of(rule: &Rule, value: f64) -> String {
        if rule.critical.is_some_and(|c| value >= c) { "critical".into() } else { rule.severity.clone() }
    }

    /// One evaluation with `value` at `now`.
    pub fn step(&mut self, value: f64, rule: &Rule, now: f64, keep: usize, flap: (u32, f64)) -> Transition {
        self.samples.push_back(Sample { ts: now, value });
        while self.samples.len() > keep.max(1) {
            self.samples.pop_front();
        }
        let clear = rule.clear.min(rule.fire);
        let bad = value >= rule.fire;
        let good = value <= clear;
        let (threshold, window) = flap;
        self.crossings.retain(|t| now - *t < window);
        if (bad || good) && self.raw_bad.is_some_and(|b| b != bad) {
            self.crossings.push_back(now);
        }
        if bad || good {
            self.raw_bad = Some(bad);
        }
        if threshold > 0 && !self.flapping && self.crossings.len() >= threshold as usize {
            self.flapping = true;
            return match &self.phase {
                Phase::Firing { .. } => Transition::Flapping,
                _ => {
                    let severity = Track::severity_of(rule, value.max(rule.fire));
                    self.phase = Phase::Firing { since: now, severity: severity.clone(), clearing_since: None };
                    Transition::Fire { severity, flapping: true }
                }
            };
        }
        if self.flapping {
            if !self.crossings.is_empty() {
                return Transition::None;
            }
            self.flapping = false;
        }
        match self.phase.clone() {
            Phase::Ok if bad => {
                self.phase = Phase::Pending { since: now };
                self.step_pending(now, now, value, rule)
            }
            Phase::Ok => Transition::None,
            Phase::Pending { since } if bad => self.step_pending(since, now, value, rule),
            Phase::Pending { .. } => {
                self.phase = Phase::Ok;
                Transition::None
            }
            Phase::Firing { since, severity, clearing_since } => {
                if good {
                    let cs = clearing_since.unwrap_or(now);
                    if now - cs >= rule.clear_secs as f64 {
                        self.phase = Phase::Ok;
                        return Transition::Clear;
                    }
                    self.phase = Phase::Firing { since, severity, clearing_since: Some(cs) };
                    return Transition::None;
                }
                let level = Track::severity_of(rule, value);
                if bad && rank(&level) > rank(&severity) {
                    self.phase = Phase::Firing { since, severity: level.clone(), clearing_since: None };
                    return Transition::Escalate { severity: level };
                }
                self.phase = Phase::Firing { since, severity, clearing_since: None };
                Transition::None
            }
        }
    }

    fn step_pending(&mut self, since: f64, now: f64, value: f64, rule: &Rule) -> Transition {
        if now - since >= rule.sustain_secs as f64 {
            let severity = Track::severity_of(rule, value);
            self.phase = Phase::Firing { since: now, severity: severity.clone(), clearing_since: None };
            Transition::Fire { severity, flapping: false }
        } else {
            Transition::None
        }
    }

    pub fn firing(&self) -> bool {
        matches!(self.phase, Phase::Firing { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::conditions::Condition;
    use crate::monitor::config::MonitorConfig;

    fn rule(c: Condition) -> Rule {
        MonitorConfig::default().base_rule(c)
    }

    #[test]
    fn fires_after_sustain_escalates_and_clears_with_hysteresis() {
        let r = rule(Condition::Cpu); // fire 90, critical 97, clear 80, sustain 300, clear 60
        let mut t = Track::new("node pve1".into(), Arc::default());
        let flap = (4, 1800.0);
        assert_eq!(t.step(95.0, &r, 0.0, 10, flap), Transition::None);
        assert!(matches!(t.phase, Phase::Pending { .. }));
        assert_eq!(t.step(85.0, &r, 100.0, 10, flap), Transition::None, "below fire breaks the sustain");
        assert_eq!(t.phase, Phase::Ok);
        t.step(92.0, &r, 200.0, 10, flap);
        assert_eq!(t.step(93.0, &r, 500.0, 10, flap), Transition::Fire { severity: "warning".into(), flapping: false });
        assert_eq!(t.step(98.0, &r, 510.0, 10, flap), Transition::Escalate { severity: "critical".into() });
        assert_eq!(t.step(85.0, &r, 520.0, 10, flap), Transition::None, "85 is above clear (80): still firing");
        assert!(t.firing());
        assert_eq!(t.step(70.0, &r, 530.0, 10, flap), Transition::None, "clear needs 60 s");
        assert_eq!(t.step(70.0, &r, 600.0, 10, flap), Transition::Clear);
        assert_eq!(t.samples.len(), 8);
    }

    #[test]
    fn a_flapping_flag_fires_once_and_stays_silent_until_stable() {
        let r = rule(Condition::NodeUnreachable); // sustain 30
        let mut t = Track::new("node pve4".into(), Arc::default());
        let flap = (4, 600.0);
        let mut fires = 0;
        let mut clears = 0;
        for i in 0..20 {
            let v = f64::from(i % 2);
            match t.step(v, &r, f64::from(i) * 10.0, 50, flap) {
                Transition::Fire { flapping, .. } => {
                    assert!(flapping);
                    fires += 1;
                }
                Transition::Clear => clears += 1,
                _ => {}
            }
        }
        assert_eq!((fires, clears), (1, 0));
        // Stable and good for the window: the flapping ends and the alert clears.
        let mut cleared = false;
        for i in 0..100 {
            cleared |= t.step(0.0, &r, 200.0 + f64::from(i) * 10.0, 50, flap) == Transition::Clear;
        }
        assert!(cleared && !t.flapping && !t.firing());
    }
}
