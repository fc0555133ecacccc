//! `node_temperatures` (GREEN): `sensors -j` over SSH on every online node in parallel.
//!
//! A node that does not answer must not slow down or break the others, and must not be hammered
//! by a dashboard that polls every few seconds: each node has its own timeout
//! (`ssh.timeout_secs`), failures push the next attempt back exponentially ([`Backoff`]), and the
//! last good readings are kept and returned, flagged stale with their age, while a node is failing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_common::tier::Tier::Green;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::service::{Cluster, Pve, pve_err};
use crate::ssh::{self, Limits};

/// Plausible range of a temperature reading; anything else (e.g. -273.15) means "no value".
const PLAUSIBLE_C: std::ops::RangeInclusive<f64> = -60.0..=250.0;
/// Longest chip or sensor label kept (they come from the node's sensors.conf).
const MAX_LABEL: usize = 64;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemperatureArgs {
    /// Only this node (default: every online node).
    #[serde(default)]
    pub node: Option<String>,
    /// Cluster name when several are configured (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// One temperature sensor, in °C.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// Chip as `sensors` names it, e.g. `k10temp-pci-00c3`.
    pub chip: String,
    pub adapter: Option<String>,
    /// Sensor label, e.g. `Tctl`, `Package id 0`, `Composite`.
    pub label: String,
    pub current: f64,
    /// `temp*_max`.
    pub high: Option<f64>,
    /// `temp*_crit`.
    pub critical: Option<f64>,
    /// `temp*_crit_alarm` was raised by the chip.
    pub critical_alarm: bool,
    /// `ok`, `high` or `critical`.
    pub state: &'static str,
}

impl Reading {
    fn describe(&self) -> String {
        let mut limits = Vec::new();
        if let Some(h) = self.high {
            limits.push(format!("high {h:.1} °C"));
        }
        if let Some(c) = self.critical {
            limits.push(format!("critical {c:.1} °C"));
        }
        let limits = if limits.is_empty() { String::new() } else { format!(" ({})", limits.join(", ")) };
        format!("{} {} {:.1} °C{limits}", self.chip, self.label, self.current)
    }
}

/// Why `sensors -j` output could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SensorsError {
    #[error("`sensors -j` printed something that is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("`sensors -j` printed JSON that is not an object of chips")]
    NotChips,
}

fn clean_label(s: &str) -> String {
    untrusted::sanitize(s).0.chars().take(MAX_LABEL).collect()
}

/// Parse `sensors -j`: `{chip: {"Adapter": "...", label: {"temp1_input": 45.0, ...}}}`; only
/// `temp*` subfeatures are read (fans, voltages and power are ignored).
pub fn parse_sensors(text: &str) -> Result<Vec<Reading>, SensorsError> {
    let v: Value = serde_json::from_str(text)?;
    let chips = v.as_object().ok_or(SensorsError::NotChips)?;
    let threshold = |x: Option<f64>| x.filter(|t| *t > 0.0 && PLAUSIBLE_C.contains(t));
    let mut out = Vec::new();
    for (chip, features) in chips {
        let Some(features) = features.as_object() else { continue };
        let adapter = features.get("Adapter").and_then(Value::as_str).map(clean_label);
        for (label, sub) in features {
            let Some(sub) = sub.as_object() else { continue };
            // temp<N>_<kind> → per N: kind → value (a feature normally has one N).
            let mut by_index: BTreeMap<&str, HashMap<&str, f64>> = BTreeMap::new();
            for (key, val) in sub {
                let Some((index, kind)) = key.strip_prefix("temp").and_then(|r| r.split_once('_')) else { continue };
                if let Some(x) = val.as_f64() {
                    by_index.entry(index).or_default().insert(kind, x);
                }
            }
            for kinds in by_index.values() {
                let Some(current) = kinds.get("input").copied().filter(|c| PLAUSIBLE_C.contains(c)) else { continue };
                let high = threshold(kinds.get("max").copied());
                let critical = threshold(kinds.get("crit").copied());
                let critical_alarm = kinds.get("crit_alarm").is_some_and(|a| *a != 0.0);
                let state = if critical_alarm || critical.is_some_and(|c| current >= c) {
                    "critical"
                } else if high.is_some_and(|h| current >= h) {
                    "high"
                } else {
                    "ok"
                };
                out.push(Reading {
                    chip: clean_label(chip),
                    adapter: adapter.clone(),
                    label: clean_label(label),
                    current,
                    high,
                    critical,
                    critical_alarm,
                    state,
                });
            }
        }
    }
    Ok(out)
}

/// Exponential backoff after consecutive failures: `base`, `2·base`, `4·base`, … up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_secs(15), max: Duration::from_secs(600) }
    }
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[derive(Default)]
struct NodeState {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    last_good: Option<(Instant, Arc<Vec<Reading>>)>,
}

/// Whether to contact a node now.
#[derive(Debug, PartialEq)]
pub enum Attempt {
    Now,
    /// Still backing off after `failures` failures; the last error and time left.
    Wait {
        retry_in: Duration,
        failures: u32,
        last_error: String,
    },
}

/// Per-node failure counts, backoff deadlines and last good readings, shared by all calls of
/// the tool (it lives in the tool's closure, so one per server).
#[derive(Default)]
pub struct NodeHealth {
    backoff: Backoff,
    nodes: Mutex<HashMap<String, NodeState>>,
}

impl NodeHealth {
    pub fn new(backoff: Backoff) -> Self {
        Self { backoff, nodes: Mutex::default() }
    }

    fn with<R>(&self, key: &str, f: impl FnOnce(&mut NodeState) -> R) -> R {
        let mut map = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(key.to_string()).or_default())
    }

    pub fn attempt(&self, key: &str, now: Instant) -> Attempt {
        self.with(key, |s| match s.retry_at {
            Some(at) if at > now => Attempt::Wait {
                retry_in: at - now,
                failures: s.failures,
                last_error: s.last_error.clone().unwrap_or_default(),
            },
            _ => Attempt::Now,
        })
    }

    pub fn succeeded(&self, key: &str, now: Instant, readings: Arc<Vec<Reading>>) {
        self.with(key, |s| {
            *s = NodeState { last_good: Some((now, readings)), ..NodeState::default() };
        })
    }

    /// Record a failure; returns the consecutive failures and the wait before the next try.
    pub fn failed(&self, key: &str, now: Instant, error: &str) -> (u32, Duration) {
        let backoff = self.backoff;
        self.with(key, |s| {
            s.failures = s.failures.saturating_add(1);
            let wait = backoff.delay(s.failures);
            s.retry_at = Some(now + wait);
            s.last_error = Some(error.to_string());
            (s.failures, wait)
        })
    }

    /// The last good readings and their age.
    pub fn last_good(&self, key: &str, now: Instant) -> Option<(Duration, Arc<Vec<Reading>>)> {
        self.with(key, |s| s.last_good.as_ref().map(|(at, r)| (now.saturating_duration_since(*at), r.clone())))
    }
}

/// One node's part of the result.
#[derive(Debug, Serialize)]
struct NodeTemps {
    node: String,
    /// `ok` (fresh), `stale` (failing now; last good readings shown), `unavailable` (failing,
    /// nothing known) or `offline` (Proxmox reports the node offline; not contacted).
    status: &'static str,
    /// False when the node was skipped (offline, or backing off after failures).
    attempted: bool,
    stale: bool,
    /// Age of the readings in seconds (0 when fresh).
    age_secs: Option<u64>,
    hottest: Option<Reading>,
    readings: Vec<Reading>,
    error: Option<String>,
    consecutive_failures: u32,
    retry_in_secs: Option<u64>,
}

impl NodeTemps {
    fn new(node: &str, status: &'static str, readings: Option<(Duration, Arc<Vec<Reading>>)>) -> Self {
        let (age, readings) = match readings {
            Some((age, r)) => (Some(age.as_secs()), r.as_ref().clone()),
            None => (None, Vec::new()),
        };
        let hottest = readings.iter().max_by(|a, b| a.current.total_cmp(&b.current)).cloned();
        Self {
            node: node.to_string(),
            status,
            attempted: true,
            stale: status != "ok" && age.is_some(),
            age_secs: age,
            hottest,
            readings,
            error: None,
            consecutive_failures: 0,
            retry_in_secs: None,
        }
    }

    /// Failing now: the last good readings (if any), flagged stale.
    fn failing(
        node: &str,
        health: &NodeHealth,
        key: &str,
        now: Instant,
        error: String,
        failures: u32,
        retry_in: Duration,
    ) -> Self {
        let last = health.last_good(key, now);
        let status = if last.is_some() { "stale" } else { "unavailable" };
        let mut t = Self::new(node, status, last);
        t.error = Some(error);
        t.consecutive_failures = failures;
        t.retry_in_secs = Some(retry_in.as_secs().max(1));
        t
    }

    fn line(&self) -> String {
        let hottest = self.hottest.as_ref().map(|h| format!("hottest {}", h.describe()));
        let count = self.readings.len();
        match (self.status, hottest) {
            ("ok", Some(h)) => format!("- {}: {h}; {count} sensors", self.node),
            ("ok", None) => format!("- {}: sensors -j reported no temperature sensors", self.node),
            (status, h) => {
                let why = self.error.as_deref().unwrap_or("no answer");
                let when = match (self.attempted, self.retry_in_secs) {
                    (false, Some(s)) => {
                        let n = self.consecutive_failures;
                        format!(
                            "not contacted, backing off for {s} s after {n} failure{}: ",
                            if n == 1 { "" } else { "s" }
                        )
                    }
                    (true, Some(s)) => format!("failed, next try in {s} s: "),
                    _ => String::new(),
                };
                let last = match (h, self.age_secs) {
                    (Some(h), Some(age)) => {
                        format!("; STALE (last good reading {} old): {h}", crate::fmt::duration(age))
                    }
                    _ => "; no earlier reading".into(),
                };
                format!("- {}: {status}, {when}{why}{last}", self.node)
            }
        }
    }
}

/// Fetch one node's readings, honouring its backoff.
async fn node_temps(pve: Arc<Pve>, cluster: Arc<Cluster>, health: Arc<NodeHealth>, node: String) -> NodeTemps {
    let key = format!("{}/{node}", cluster.name);
    let now = Instant::now();
    if let Attempt::Wait { retry_in, failures, last_error } = health.attempt(&key, now) {
        let mut t = NodeTemps::failing(&node, &health, &key, now, last_error, failures, retry_in);
        t.attempted = false;
        return t;
    }
    let timeout = Duration::from_secs(pve.config.ssh.timeout_secs.max(1));
    let fetch = async {
        let ep = ssh::resolve(&cluster, &pve.config.ssh, &node).await.map_err(|e| e.to_string())?;
        let argv = ["sensors".to_string(), "-j".to_string()];
        let out = ssh::run(&pve.config.ssh, &ep, &argv, Limits::new(timeout)).await.map_err(|e| e.to_string())?;
        if out.exit_status != Some(0) {
            // stderr is the node's text: log it for the operator, keep it out of the result.
            tracing::warn!(node, status = ?out.exit_status, stderr = %untrusted::sanitize(&out.stderr).0, "sensors -j failed");
            return Err(format!("`sensors -j` exited with status {:?} (is lm-sensors installed?)", out.exit_status));
        }
        parse_sensors(&out.stdout).map_err(|e| e.to_string())
    };
    let result = match tokio::time::timeout(timeout, fetch).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    };
    let now = Instant::now();
    match result {
        Ok(readings) => {
            let readings = Arc::new(readings);
            health.succeeded(&key, now, readings.clone());
            NodeTemps::new(&node, "ok", Some((Duration::ZERO, readings)))
        }
        Err(error) => {
            tracing::warn!(node, %error, "node temperatures unavailable");
            let (failures, wait) = health.failed(&key, now, &error);
            NodeTemps::failing(&node, &health, &key, now, error, failures, wait)
        }
    }
}

async fn node_temperatures(s: Arc<Pve>, a: TemperatureArgs, health: Arc<NodeHealth>) -> Result<ToolOutput, ToolError> {
    let c = s.cluster(a.cluster.as_deref())?;
    let nodes: Vec<(String, bool)> = match &a.node {
        Some(n) => vec![(c.node(n).await?, true)],
        None => c.node_names().await.map_err(pve_err)?,
    };
    let mut set = JoinSet::new();
    let mut results = Vec::new();
    for (node, online) in nodes {
        if online {
            set.spawn(node_temps(s.clone(), c.clone(), health.clone(), node));
        } else {
            let key = format!("{}/{node}", c.name);
            let mut t = NodeTemps::new(&node, "offline", health.last_good(&key, Instant::now()));
            t.attempted = false;
            t.error = Some("Proxmox reports the node offline".into());
            results.push(t);
        }
    }
    while let Some(r) = set.join_next().await {
        results.push(r.map_err(|e| ToolError::Failed(format!("a node task stopped unexpectedly: {e}")))?);
    }
    results.sort_by(|a, b| a.node.cmp(&b.node));
    let answered = results.iter().filter(|r| r.status == "ok").count();
    let mut text =
        format!("Node temperatures, cluster '{}' ({answered} of {} nodes answered now):\n", c.name, results.len());
    text.push_str(&results.iter().map(NodeTemps::line).collect::<Vec<_>>().join("\n"));
    let alerts: Vec<String> = results
        .iter()
        .flat_map(|r| r.readings.iter().filter(|x| x.state != "ok").map(move |x| (r, x)))
        .map(|(r, x)| {
            let stale = if r.stale { " (stale reading)" } else { "" };
            format!("- {}: {} is above its {} limit{stale}", r.node, x.describe(), x.state.to_uppercase())
        })
        .collect();
    if !alerts.is_empty() {
        text.push_str("\n\nAbove their limits:\n");
        text.push_str(&alerts.join("\n"));
    }
    Ok(ToolOutput::new(text, json!({"cluster": c.name, "nodes": results, "alerts": alerts.len()})))
}

pub fn register(r: &mut Registry<Pve>) {
    let health = Arc::new(NodeHealth::new(Backoff::default()));
    r.add(
        ToolSpec {
            name: "node_temperatures",
            title: "Node temperatures",
            description: "CPU, NVMe and board temperatures of every online node (or one node), read with `sensors -j` over SSH, \
                          with high/critical thresholds. A node that does not answer is retried with backoff; its last good \
                          readings are returned flagged stale with their age.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        move |s: Arc<Pve>, a: TemperatureArgs, _ctx: CallCtx| node_temperatures(s, a, health.clone()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_its_cap() {
        let b = Backoff { base: Duration::from_secs(10), max: Duration::from_secs(60) };
        let secs: Vec<u64> = (1..=6).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![10, 20, 40, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn a_failing_node_is_not_retried_before_its_backoff_and_keeps_its_last_good_value() {
        let h = NodeHealth::new(Backoff { base: Duration::from_secs(10), max: Duration::from_secs(60) });
        let t0 = Instant::now();
        let good = Arc::new(
            parse_sensors(r#"{"acpitz-acpi-0":{"Adapter":"ACPI interface","temp1":{"temp1_input":40.0}}}"#)
                .expect("parse"),
        );
        h.succeeded("c/pve1", t0, good.clone());
        assert_eq!(h.attempt("c/pve1", t0), Attempt::Now);
        assert_eq!(h.failed("c/pve1", t0 + Duration::from_secs(5), "refused"), (1, Duration::from_secs(10)));
        assert!(matches!(h.attempt("c/pve1", t0 + Duration::from_secs(14)), Attempt::Wait { failures: 1, .. }));
        assert_eq!(h.attempt("c/pve1", t0 + Duration::from_secs(15)), Attempt::Now);
        assert_eq!(h.failed("c/pve1", t0 + Duration::from_secs(15), "refused").1, Duration::from_secs(20));
        let (age, readings) = h.last_good("c/pve1", t0 + Duration::from_secs(30)).expect("kept");
        assert_eq!((age, readings), (Duration::from_secs(30), good.clone()));
        h.succeeded("c/pve1", t0 + Duration::from_secs(40), good);
        assert_eq!(h.attempt("c/pve1", t0 + Duration::from_secs(40)), Attempt::Now);
    }

    #[test]
    fn thresholds_alarms_and_meaningless_values_are_interpreted() {
        let r = parse_sensors(
            r#"{"nvme-pci-0100":{"Adapter":"PCI adapter",
                "Composite":{"temp1_input":85.85,"temp1_max":81.85,"temp1_min":-273.15,"temp1_crit":84.85,"temp1_alarm":1.0},
                "Sensor 2":{"temp3_input":45.85,"temp3_max":65261.85,"temp3_min":-273.15}},
               "coretemp-isa-0000":{"Adapter":"ISA adapter",
                "Core 0":{"temp2_input":82.0,"temp2_max":80.0,"temp2_crit":100.0,"temp2_crit_alarm":0.0},
                "Core 1":{"temp3_input":-273.15}},
               "fan-chip":{"Adapter":"x","fan1":{"fan1_input":1200.0}}}"#,
        )
        .expect("parse");
        let by_label = |l: &str| r.iter().find(|x| x.label == l).cloned().expect(l);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!(by_label("Composite").state, "critical");
        assert_eq!(by_label("Sensor 2").high, None, "65261.85 is the NVMe way of saying 'no limit'");
        assert_eq!((by_label("Core 0").state, by_label("Core 0").critical), ("high", Some(100.0)));
        assert!(parse_sensors("not json").is_err());
        assert!(parse_sensors("[]").is_err());
    }
}
