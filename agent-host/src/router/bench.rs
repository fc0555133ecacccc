//! The labelled routing set (`tests/fixtures/routing/messages.tsv`) and its scoring, shared by the bench
//! example (`cargo run -p agent-host --example routing_bench`) and a CI test.

use super::{Decision, Features, RoutingConfig, Target, Unavailable, builtin_rules, decide};

/// The labelled set, compiled in.
pub const MESSAGES: &str = include_str!("../../../tests/fixtures/routing/messages.tsv");

/// One labelled message.
#[derive(Debug, Clone)]
pub struct Case {
    pub expected: Target,
    pub kind: String,
    pub previous: Option<Target>,
    pub text: String,
}

pub fn cases(tsv: &str) -> Vec<Case> {
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut p = l.splitn(4, '\t');
            let t = |s: &str| match s {
                "anthropic" => Some(Target::Anthropic),
                "local" => Some(Target::Local),
                _ => None,
            };
            Some(Case {
                expected: t(p.next()?)?,
                kind: p.next()?.to_string(),
                previous: t(p.next()?),
                text: p.next()?.to_string(),
            })
        })
        .collect()
}

/// Scores of a run.
#[derive(Debug, Default)]
pub struct Score {
    pub total: usize,
    pub agree: usize,
    pub conversational: usize,
    pub conversational_local: usize,
    /// Action messages sent to a provider without tools, over every availability scenario.
    pub actions_to_toolless: usize,
    pub misses: Vec<(Case, Decision)>,
}

impl Score {
    pub fn accuracy(&self) -> f64 {
        self.agree as f64 / self.total.max(1) as f64
    }
    pub fn local_share(&self) -> f64 {
        self.conversational_local as f64 / self.conversational.max(1) as f64
    }
}

pub fn run(cases: &[Case]) -> Score {
    let rules = builtin_rules();
    let cfg = RoutingConfig::default();
    let mut s = Score::default();
    for c in cases {
        let f = Features::of(&c.text, c.previous);
        let d = decide(&rules, &f, Ok(()), Ok(()), &cfg);
        s.total += 1;
        if d.target == Some(c.expected) {
            s.agree += 1;
        } else {
            s.misses.push((c.clone(), d.clone()));
        }
        if matches!(c.kind.as_str(), "chat" | "smalltalk" | "knowledge" | "summary") {
            s.conversational += 1;
            s.conversational_local += usize::from(d.target == Some(Target::Local));
        }
        if c.kind == "action" {
            let scenarios = [
                (Ok(()), Ok(())),
                (Err(Unavailable::OverBudget), Ok(())),
                (Err(Unavailable::RateLimited("60 s".into())), Ok(())),
                (Err(Unavailable::NotConfigured), Ok(())),
                (Ok(()), Err(Unavailable::Down("x".into()))),
            ];
            for (a, l) in scenarios {
                let d = decide(&rules, &f, a, l, &cfg);
                if d.target.is_some() && !d.tools {
                    s.actions_to_toolless += 1;
                    s.misses.push((c.clone(), d.clone()));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labelled_set_meets_the_targets() {
        let cases = cases(MESSAGES);
        assert!(cases.len() >= 200, "{}", cases.len());
        let s = run(&cases);
        let misses: Vec<String> = s
            .misses
            .iter()
            .map(|(c, d)| format!("{:?} {} -> {:?} ({})", c.expected, c.text, d.target, d.rule))
            .collect();
        assert!(s.accuracy() >= 0.95, "accuracy {:.3}; misses: {misses:#?}", s.accuracy());
        assert!(s.local_share() >= 0.60, "local share {:.3}", s.local_share());
        assert_eq!(s.actions_to_toolless, 0);
    }
}
