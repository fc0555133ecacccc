//! Routing: which model answers a message. Rules are data (`[[routing.rules]]`, `PUT /api/routing/rules`),
//! evaluated in order, the first that holds wins; the built-in rules are only the default set. Then
//! availability: no key, rate limit, outage or budget send Claude's work to the local model with a notice
//! (never an action: a provider without tools gets no action request), and a local outage sends local work
//! to Claude when allowed.

pub mod bench;
pub mod classify;
mod lexicon;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use classify::Features;

/// A provider a message can go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Anthropic,
    Local,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Anthropic => "anthropic",
            Target::Local => "local",
        }
    }
}

/// Conditions of a rule; all that are given must hold (an empty `when` always holds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct When {
    /// Regular expression (case-insensitive) the message must match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Words or phrases; holds when the message contains one of them (whole words, case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<String>,
    /// A tool name: holds when the message asks for what that tool does (e.g. `run_node_command`:
    /// "run", "ssh", "command", "journalctl" …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Holds when the message asks for an action on the cluster (true) or does not (false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<bool>,
    /// Holds when the message is about this cluster's state (guests, nodes, storage, tasks …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<bool>,
    /// Holds when the message follows up an answer of this provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up_to: Option<Target>,
    /// Holds when the message has at most this many words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_words: Option<usize>,
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub when: When,
    pub route: Target,
    /// Shown to the user with the route.
    pub reason: String,
}

/// `[routing]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Route at all (false = Claude when configured, else the local model, as before).
    pub enabled: bool,
    /// Rules in order; empty = the built-in set (`GET /api/routing/rules` shows it). A set saved with
    /// `PUT /api/routing/rules` replaces both.
    pub rules: Vec<Rule>,
    /// Whether the local model is offered the tools (most small models cannot use them well). Without
    /// tools it never receives an action request.
    pub local_tools: bool,
    /// Send local work to Claude when the local model is down.
    pub claude_fallback: bool,
    /// Seconds a provider counts as down after an outage (a rate limit uses its `retry-after`).
    pub down_secs: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self { enabled: true, rules: Vec::new(), local_tools: false, claude_fallback: true, down_secs: 60 }
    }
}

fn rule(id: &str, when: When, route: Target, reason: &str) -> Rule {
    Rule { id: id.into(), when, route, reason: reason.into() }
}

/// The default rule set.
pub fn builtin_rules() -> Vec<Rule> {
    use Target::*;
    let pat = |p: &str| When { pattern: Some(p.into()), ..When::default() };
    vec![
        rule(
            "explicit-local",
            pat(
                r"\b(use|ask|try|switch to|with|via)\s+(the\s+)?(local|offline|qwen|llama)(\s+(model|llm|one))?\b|\blocally\b|\b(lokal|local)\s+(bitte|please)\b",
            ),
            Local,
            "you asked for the local model",
        ),
        rule(
            "explicit-claude",
            pat(r"\b(ask|use|try|switch to|with|via|let)\s+claude\b|\bclaude[,:]\s|\bclaude\s+(please|bitte)\b"),
            Anthropic,
            "you asked for Claude",
        ),
        rule(
            "action",
            When { action: Some(true), ..When::default() },
            Anthropic,
            "an action on the cluster needs the tools",
        ),
        rule(
            "node-commands",
            When { tool: Some("run_node_command".into()), ..When::default() },
            Anthropic,
            "commands on a node run through Claude's tools",
        ),
        rule(
            "cluster",
            When { cluster: Some(true), ..When::default() },
            Anthropic,
            "a question about the live cluster needs the tools",
        ),
        rule(
            "follow-up",
            When { follow_up_to: Some(Anthropic), ..When::default() },
            Anthropic,
            "a follow-up to Claude's answer",
        ),
        rule("conversation", When::default(), Local, "conversation: the local model answers"),
    ]
}

/// Checks a rule set: ids present and unique, patterns compile.
pub fn validate(rules: &[Rule]) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for r in rules {
        if r.id.trim().is_empty() || !ids.insert(r.id.as_str()) {
            return Err(format!("rule ids must be present and unique ('{}')", r.id));
        }
        if let Some(p) = &r.when.pattern {
            compile(p).map_err(|e| format!("rule '{}': bad pattern: {e}", r.id))?;
        }
    }
    Ok(())
}

fn compile(p: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(p).case_insensitive(true).size_limit(1 << 20).build()
}

/// Whether `when` holds for message features `f`.
pub fn holds(when: &When, f: &Features) -> bool {
    if let Some(p) = &when.pattern
        && !compile(p).is_ok_and(|re| re.is_match(&f.text))
    {
        return false;
    }
    if !when.any.is_empty() && !when.any.iter().any(|w| f.contains_phrase(w)) {
        return false;
    }
    if let Some(tool) = &when.tool
        && !f.mentions_tool(tool)
    {
        return false;
    }
    if when.action.is_some_and(|a| a != f.action) || when.cluster.is_some_and(|c| c != f.cluster) {
        return false;
    }
    if let Some(t) = when.follow_up_to
        && !(f.follow_up && f.previous == Some(t))
    {
        return false;
    }
    when.max_words.is_none_or(|n| f.words.len() <= n)
}

/// Why a provider cannot take a message now.
#[derive(Debug, Clone, PartialEq)]
pub enum Unavailable {
    NotConfigured,
    RateLimited(String),
    Down(String),
    OverBudget,
}

impl Unavailable {
    fn say(&self, who: &str) -> String {
        match self {
            Unavailable::NotConfigured => format!("{who} is not configured"),
            Unavailable::RateLimited(m) => format!("{who} is rate-limited ({m})"),
            Unavailable::Down(m) => format!("{who} is unavailable ({m})"),
            Unavailable::OverBudget => format!("the budget cap is reached, so {who} is not used"),
        }
    }
}

/// What the router decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// `None`: no model may answer (the notice says why).
    pub target: Option<Target>,
    pub rule: String,
    pub reason: String,
    /// Whether the provider is offered the tools.
    pub tools: bool,
    /// Shown to the user (fallbacks, refusals).
    pub notice: Option<String>,
}

/// Routes features `f` with `rules`, given which providers are available.
pub fn decide(
    rules: &[Rule],
    f: &Features,
    anthropic: Result<(), Unavailable>,
    local: Result<(), Unavailable>,
    cfg: &RoutingConfig,
) -> Decision {
    let (wanted, rule_id, reason) = rules
        .iter()
        .find(|r| holds(&r.when, f))
        .map(|r| (r.route, r.id.clone(), r.reason.clone()))
        .unwrap_or((Target::Local, "default".into(), "no rule matched".into()));
    let has_tools = |t: Target| t == Target::Anthropic || cfg.local_tools;
    let mut d = Decision { target: Some(wanted), rule: rule_id, reason, tools: has_tools(wanted), notice: None };
    let ok = |t: Target| if t == Target::Anthropic { anthropic.clone() } else { local.clone() };
    let other = |t: Target| if t == Target::Anthropic { Target::Local } else { Target::Anthropic };
    if let Err(why) = ok(wanted) {
        let alt = other(wanted);
        let alt_allowed = ok(alt).is_ok() && (alt == Target::Local || cfg.claude_fallback);
        let who = if wanted == Target::Anthropic { "Claude" } else { "the local model" };
        if alt_allowed && (!f.action || has_tools(alt)) {
            let silent = why == Unavailable::NotConfigured;
            d.target = Some(alt);
            d.tools = has_tools(alt);
            d.reason = format!(
                "{}; {} answers",
                why.say(who),
                if alt == Target::Local { "the local model" } else { "Claude" }
            );
            d.notice = (!silent).then(|| {
                format!(
                    "{}, so {} answers this one.",
                    capital(&why.say(who)),
                    if alt == Target::Local { "the local model (without tools)" } else { "Claude" }
                )
            });
        } else {
            d.target = None;
            d.tools = false;
            d.reason = why.say(who);
            d.notice = Some(if f.action {
                format!(
                    "{}. Actions need a model with tools, and the local model has none, so I will not attempt it now.",
                    capital(&why.say(who))
                )
            } else {
                format!("{}, and no other model is available.", capital(&why.say(who)))
            });
        }
    }
    // The invariant, whatever the rules say: an action never goes to a provider without tools.
    if f.action && d.target.is_some() && !d.tools {
        let claude_ok = anthropic.is_ok();
        if claude_ok {
            d.target = Some(Target::Anthropic);
            d.tools = true;
            d.reason = format!("{} (overridden: an action needs the tools)", d.reason);
        } else {
            d.target = None;
            d.notice = Some("That is an action, and only a model with tools may act; none is available now.".into());
        }
    }
    d
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Providers that failed recently, and until when they count as down.
#[derive(Default)]
pub struct Health(Mutex<HashMap<Target, (Instant, Unavailable)>>);

impl Health {
    pub fn mark(&self, t: Target, why: Unavailable, for_: Duration) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(t, (Instant::now() + for_, why));
        }
    }
    pub fn clear(&self, t: Target) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&t);
        }
    }
    pub fn status(&self, t: Target) -> Result<(), Unavailable> {
        let m = self.0.lock().map_err(|_| Unavailable::Down("health state poisoned".into()))?;
        match m.get(&t) {
            Some((until, why)) if *until > Instant::now() => Err(why.clone()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
