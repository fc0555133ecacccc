//! Runbooks: what the monitor does about a firing alert on its own — restart a crashed guest,
//! wake an unreachable node, back a guest up again after a failed backup — each switchable
//! (`monitor.actions.runbooks`), and every guardrail in front of it: autonomy level, kill switch
//! (read before every call; unreadable counts as on), protected resources, HA-managed and
//! locked guests, the safety gate (GREEN/YELLOW only, never RED/BLACK), attempts per incident,
//! cooldowns, an hourly cap and one action per node at a time (one node wake at a time).
//! After acting it re-reads the state and escalates when the fix did not take.

use std::collections::{HashMap, HashSet, VecDeque};

/// Seconds after which an incident's attempts and announcements are forgotten.
const FORGET_SECS: f64 = 7.0 * 86_400.0;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_common::tier::Tier;
use mcp_common::untrusted;
use serde_json::{Value, json};

use super::Monitor;
use super::conditions::{Condition, Target, task_ok};
use super::config::{ProtectConfig, RunbookConfig};
use super::events::{Kind, NewEvent, now_unix};
use crate::gate::{Decision, decide};

/// A firing alert a runbook may fix.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub condition: Condition,
    pub resource: String,
    /// When the incident started (firing since).
    pub since: f64,
    pub label: String,
    pub target: Arc<Target>,
}

impl Candidate {
    fn incident(&self) -> String {
        format!("{}|{}|{}", self.condition.as_str(), self.resource, self.since)
    }
}

#[derive(Default)]
struct State {
    /// Incident → (attempts, when the incident started).
    attempts: HashMap<String, (u32, f64)>,
    /// (incident, reason) already announced, so each skip is explained once → incident start.
    said: HashMap<(String, &'static str), f64>,
    last_action: HashMap<String, f64>,
    busy_nodes: HashSet<String>,
    waking: Option<String>,
    hour: VecDeque<f64>,
}

#[derive(Default)]
pub struct Actions {
    st: Mutex<State>,
}

struct Plan {
    tool: &'static str,
    args: Value,
    verb: &'static str,
    /// The runbook's switch in `monitor.actions.runbooks`.
    runbook: &'static str,
    enabled: bool,
    /// Why the monitor acts, for the action event.
    why: String,
    /// Titles of the action and of its verification.
    doing: String,
    done: String,
}

/// One runbook: its name in `monitor.actions.runbooks`, the condition it answers, the tool it calls, and
/// its switch.
struct Runbook {
    name: &'static str,
    condition: Condition,
    tool: &'static str,
    on: fn(&RunbookConfig) -> bool,
}

const RUNBOOKS: [Runbook; 3] = [
    Runbook {
        name: "restart_crashed_guest",
        condition: Condition::GuestCrashed,
        tool: "start_guest",
        on: |c| c.restart_crashed_guest,
    },
    Runbook {
        name: "wake_unreachable_node",
        condition: Condition::NodeUnreachable,
        tool: "wake_node",
        on: |c| c.wake_unreachable_node,
    },
    Runbook {
        name: "retry_failed_backup",
        condition: Condition::BackupFailed,
        tool: "backup_guest",
        on: |c| c.retry_failed_backup,
    },
];

/// The runbooks with their switches, for `GET /api/monitor`.
pub fn catalog(on: &RunbookConfig) -> Value {
    RUNBOOKS
        .iter()
        .map(|r| json!({"name": r.name, "condition": r.condition.as_str(), "tool": r.tool, "enabled": (r.on)(on)}))
        .collect()
}

/// Whether a firing alert of this condition is something a runbook may fix (the others only alert).
pub fn has_runbook(c: Condition) -> bool {
    RUNBOOKS.iter().any(|r| r.condition == c)
}

fn plan(c: &Candidate, on: &RunbookConfig) -> Option<Plan> {
    let book = RUNBOOKS.iter().find(|r| r.condition == c.condition)?;
    let cluster = |mut v: Value| {
        if !c.target.cluster.is_empty() && c.resource.contains(':') {
            v["cluster"] = json!(c.target.cluster);
        }
        v
    };
    let label = &c.label;
    let (args, verb, why, doing, done) = match c.condition {
        Condition::GuestCrashed => (
            json!({"vmid": c.target.vmid?}),
            "restart",
            "it stopped without a stop or shutdown task",
            format!("Restarting {label}"),
            format!("{label} is running again"),
        ),
        Condition::NodeUnreachable => (
            json!({"node": c.target.node.clone()?}),
            "wake",
            "Proxmox reports it unreachable",
            format!("Waking {label} (Wake-on-LAN)"),
            format!("{label} is back online"),
        ),
        Condition::BackupFailed => (
            json!({"vmid": c.target.vmid?, "mode": "snapshot"}),
            "back up",
            "its latest backup failed",
            format!("Backing up {label} again"),
            format!("{label} is backed up again"),
        ),
        _ => return None,
    };
    Some(Plan {
        tool: book.tool,
        args: cluster(args),
        verb,
        runbook: book.name,
        enabled: (book.on)(on),
        why: why.into(),
        doing,
        done,
    })
}

/// Why the monitor must not touch this resource, if it must not.
pub fn protected(p: &ProtectConfig, t: &Target) -> Option<String> {
    if let Some(v) = t.vmid.filter(|v| p.vmids.contains(v)) {
        return Some(format!("guest {v} is listed in monitor.protect.vmids"));
    }
    if let Some(tag) = t.tags.iter().find(|tag| p.tags.iter().any(|x| x.eq_ignore_ascii_case(tag))) {
        return Some(format!("it carries the protected tag '{tag}'"));
    }
    if let Some(pool) = t.pool.as_ref().filter(|pool| p.pools.contains(pool)) {
        return Some(format!("it is in the protected pool '{pool}'"));
    }
    if let Some(node) = t.node.as_ref().filter(|n| p.nodes.contains(n)) {
        return Some(format!("node {node} is protected"));
    }
    None
}

fn info(c: &Candidate, title: String, detail: String) -> NewEvent {
    NewEvent {
        kind: Kind::Info,
        severity: "info".into(),
        resource: Some(c.resource.clone()),
        condition: Some(c.condition.as_str().into()),
        title,
        detail,
        auto: false,
        data: json!({"incident": c.incident()}),
    }
}

fn auto_event(c: &Candidate, kind: Kind, severity: &str, title: String, detail: String, data: Value) -> NewEvent {
    NewEvent {
        kind,
        severity: severity.into(),
        resource: Some(c.resource.clone()),
        condition: Some(c.condition.as_str().into()),
        title,
        detail,
        auto: true,
        data,
    }
}

/// Decide, for each firing candidate, whether a runbook starts now; explain every "no" once.
pub async fn consider(m: &Arc<Monitor>, cands: Vec<Candidate>, now: f64) {
    if cands.is_empty() {
        return;
    }
    let autonomy = m.autonomy();
    if autonomy < 2 {
        return;
    }
    let kill = m.agent.kill_switch().await;
    let tools = m.agent.mcp.tools().await;
    let a = &m.cfg.actions;
    let mut say = Vec::new();
    let mut start = Vec::new();
    {
        let mut st = m.actions.st.lock().unwrap_or_else(|e| e.into_inner());
        st.hour.retain(|t| now - t < 3600.0);
        // Incidents older than a week are forgotten (an incident that is still firing keeps its
        // count only that long, then gets fresh attempts).
        st.attempts.retain(|_, (_, since)| now - *since < FORGET_SECS);
        st.said.retain(|_, since| now - *since < FORGET_SECS);
        for c in cands {
            let Some(p) = plan(&c, &a.runbooks) else { continue };
            let inc = c.incident();
            let mut once = |st: &mut State, reason: &'static str, title: String, detail: String| {
                if st.said.insert((inc.clone(), reason), c.since).is_none() {
                    say.push(info(&c, title, detail));
                }
            };
            // An incident Jarvis gave up on (and escalated) is the operator's now: nothing more to say.
            let tries = st.attempts.get(&inc).map_or(0, |a| a.0);
            if tries >= a.max_attempts {
                continue;
            }
            let label = &c.label;
            let verb = p.verb;
            if !p.enabled {
                once(
                    &mut st,
                    "off",
                    format!("No runbook for {label}"),
                    format!("The runbook {} is off (monitor.actions.runbooks); this alert is for you.", p.runbook),
                );
                continue;
            }
            if autonomy == 2 {
                once(
                    &mut st,
                    "suggest",
                    format!("Suggestion: {verb} {label}"),
                    format!("Autonomy is L2 (suggest): Jarvis would run {} {} but leaves it to you.", p.tool, p.args),
                );
                continue;
            }
            if kill {
                once(
                    &mut st,
                    "kill",
                    format!("Not acting on {label}: the kill switch is on"),
                    format!("With the kill switch off, Jarvis would {verb} it ({}).", p.tool),
                );
                continue;
            }
            if let Some(why) = protected(&m.cfg.protect, &c.target) {
                once(
                    &mut st,
                    "protected",
                    format!("Not acting on {label}: it is protected"),
                    format!("Jarvis never acts on protected resources: {why}. Please look at it yourself."),
                );
                continue;
            }
            if c.condition == Condition::GuestCrashed
                && let Some(ha) = c.target.hastate.as_ref().filter(|h| h.as_str() != "ignored")
            {
                once(
                    &mut st,
                    "ha",
                    format!("Leaving {label} to Proxmox HA"),
                    format!("It is HA-managed (state {ha}); the HA stack recovers it, Jarvis does not interfere."),
                );
                continue;
            }
            if let Some(lock) = c.target.vmid.and(c.target.lock.as_ref()) {
                once(
                    &mut st,
                    "lock",
                    format!("Not acting on {label} yet: it is locked ({lock})"),
                    "A locked guest is in the middle of an operation; Jarvis waits for the lock to go.".into(),
                );
                continue;
            }
            let node = c.target.node.clone().unwrap_or_default();
            if st.last_action.get(&c.resource).is_some_and(|t| now - t < a.cooldown_secs as f64)
                || st.busy_nodes.contains(&node)
                || st.waking.is_some()
            {
                continue;
            }
            if st.hour.len() >= a.max_per_hour as usize {
                let done = st.hour.len();
                once(
                    &mut st,
                    "cap",
                    format!("Not acting on {label}: hourly action limit reached"),
                    format!("Jarvis already acted {done} times in the last hour (monitor.actions.max_per_hour)."),
                );
                continue;
            }
            let Some(tool) = tools.iter().find(|t| t.name == p.tool) else {
                once(
                    &mut st,
                    "tool",
                    format!("Cannot {verb} {label}"),
                    format!("No MCP server offers the tool {} right now.", p.tool),
                );
                continue;
            };
            if tool.tier > Tier::Yellow || decide(p.tool, tool.tier, false) != Decision::Run {
                once(
                    &mut st,
                    "tier",
                    format!("Not acting on {label}: {} is {}", p.tool, tool.tier.as_str().to_uppercase()),
                    "Jarvis only runs GREEN and YELLOW tools on its own; RED waits for a human and BLACK never runs."
                        .into(),
                );
                continue;
            }
            st.attempts.insert(inc.clone(), (tries + 1, c.since));
            st.last_action.insert(c.resource.clone(), now);
            st.hour.push_back(now);
            st.busy_nodes.insert(node);
            if c.condition == Condition::NodeUnreachable {
                st.waking = c.target.node.clone();
            }
            start.push((c, p, tries + 1));
        }
    }
    for e in say {
        m.emit(e, now).await;
    }
    for (c, p, attempt) in start {
        let me = m.clone();
        m.spawn(async move {
            execute(&me, &c, &p, attempt).await;
            let mut st = me.actions.st.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = &c.target.node {
                st.busy_nodes.remove(n);
            }
            if c.condition == Condition::NodeUnreachable {
                st.waking = None;
            }
        });
    }
}

/// A GREEN read outside the gate's bookkeeping (reads need no approval and no audit).
async fn read(m: &Monitor, tool: &str, args: Value) -> Result<Value, String> {
    let t = m.agent.mcp.find(tool).await.ok_or_else(|| format!("no tool {tool}"))?;
    if t.tier != Tier::Green {
        return Err(format!("{tool} is not a read-only tool"));
    }
    let r = m.agent.mcp.call(&t, args, "monitor-read", None).await.map_err(|e| e.to_string())?;
    if r.is_error == Some(true) {
        return Err(text_of(&r));
    }
    Ok(r.structured_content.unwrap_or(Value::Null))
}

/// A tool's answer for an event: whole when short, else its first line (the outcome) and its last 300
/// characters (where a task log says why it failed).
fn text_of(r: &rmcp::model::CallToolResult) -> String {
    let t: String = r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n");
    let t = untrusted::sanitize(&t).0;
    let chars: Vec<char> = t.chars().collect();
    if chars.len() <= 400 {
        return t;
    }
    let first: String = t.lines().next().unwrap_or("").chars().take(100).collect();
    let tail: String = chars[chars.len() - 300..].iter().collect();
    format!("{first} … {tail}")
}

/// The state the runbook wants to change, re-read now: `Ok(true)` when it is already fine.
async fn healthy(m: &Monitor, c: &Candidate) -> Result<(bool, String), String> {
    match c.condition {
        Condition::GuestCrashed => {
            let v = read(m, "guest_status", json!({"vmid": c.target.vmid})).await?;
            let state = v.get("state").and_then(Value::as_str).unwrap_or("?").to_string();
            Ok((state == "running", state))
        }
        Condition::BackupFailed => {
            // Fine again once the guest's newest finished backup task succeeded (what the condition reads).
            let v = read(m, "list_tasks", json!({"vmid": c.target.vmid, "limit": 50})).await?;
            let newest = v["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["type"] == "vzdump" && t["status"].as_str().is_some_and(|s| s != "RUNNING"))
                .max_by(|a, b| {
                    a["starttime"].as_f64().unwrap_or(0.0).total_cmp(&b["starttime"].as_f64().unwrap_or(0.0))
                });
            let status = newest.and_then(|t| t["status"].as_str()).unwrap_or("no backup task").to_string();
            let ok = task_ok(&status);
            let state = format!(
                "{} (latest backup: {})",
                if ok { "backed up" } else { "not backed up" },
                untrusted::sanitize(&status).0
            );
            Ok((ok, state))
        }
        Condition::NodeUnreachable => {
            let snap = m.read_snapshot().await?;
            let node = c.target.node.as_deref().unwrap_or("");
            let status = snap["clusters"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|cl| cl["nodes"].as_array().cloned().unwrap_or_default())
                .find(|n| n["node"] == node)
                .and_then(|n| n["status"].as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            Ok((status == "online", status))
        }
        _ => Ok((false, String::new())),
    }
}

/// Run one tool through the agent host's gate, audited like a chat tool call.
async fn gated_call(m: &Monitor, c: &Candidate, tool: &str, args: &Value) -> (bool, String) {
    let Some(t) = m.agent.mcp.find(tool).await else { return (false, format!("no tool {tool}")) };
    if t.tier > Tier::Yellow || decide(tool, t.tier, false) != Decision::Run {
        return (false, format!("{tool} is {} and does not run without a human", t.tier.as_str()));
    }
    if m.agent.kill_switch().await {
        return (false, "the kill switch is on".into());
    }
    let request_id = format!("monitor-{}", uuid::Uuid::new_v4());
    let timeout = Duration::from_secs(m.agent.cfg.tool_timeout_secs.max(1));
    let r = tokio::time::timeout(timeout, m.agent.mcp.call(&t, args.clone(), &request_id, None)).await;
    let (ok, text) = match r {
        Ok(Ok(r)) => (r.is_error != Some(true), text_of(&r)),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (false, format!("{tool} did not answer within {} s", timeout.as_secs())),
    };
    let _ = m
        .agent
        .store
        .event(
            "tool",
            json!({"session": "monitor", "tool": tool, "tier": t.tier, "arguments": args, "ok": ok, "auto": true,
                   "request_id": request_id, "incident": c.incident()}),
        )
        .await;
    (ok, text)
}

async fn execute(m: &Arc<Monitor>, c: &Candidate, p: &Plan, attempt: u32) {
    let a = &m.cfg.actions;
    let label = &c.label;
    match healthy(m, c).await {
        Ok((true, state)) => {
            let e = info(c, format!("{label} is {state} again"), "Nothing to do; no action taken.".into());
            m.emit(e, now_unix()).await;
            return;
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not re-read state before acting"),
    }
    let title = p.doing.clone();
    let detail = format!(
        "{}. Attempt {attempt} of {}: {} {} (YELLOW, through the safety gate).",
        capitalised(&p.why),
        a.max_attempts,
        p.tool,
        p.args
    );
    m.emit(
        auto_event(c, Kind::Action, "info", title, detail, json!({"tool": p.tool, "arguments": p.args})),
        now_unix(),
    )
    .await;
    let (ok, text) = gated_call(m, c, p.tool, &p.args).await;
    let started = Instant::now();
    let deadline = Duration::from_secs(a.verify_secs);
    let poll = Duration::from_millis(a.verify_poll_ms.max(50));
    let mut last;
    loop {
        match healthy(m, c).await {
            Ok((true, state)) => {
                let detail =
                    format!("Verified {} s after {}: {} is {state}.", started.elapsed().as_secs(), p.tool, c.resource);
                let title = p.done.clone();
                m.emit(auto_event(c, Kind::Verify, "info", title, detail, json!({"tool_ok": ok})), now_unix()).await;
                return;
            }
            Ok((false, state)) => last = state,
            Err(e) => last = format!("unreadable ({e})"),
        }
        if started.elapsed() >= deadline || (!ok && started.elapsed() >= poll * 2) {
            break;
        }
        tokio::time::sleep(poll).await;
    }
    let next = if attempt >= a.max_attempts {
        format!("Jarvis gives up after {attempt} attempt(s): this needs you.")
    } else {
        format!(
            "Jarvis tries again after the {} s cooldown (attempt {} of {}).",
            a.cooldown_secs,
            attempt + 1,
            a.max_attempts
        )
    };
    let detail = format!(
        "{} {} {}: {}. State after {} s: {last}. {next}",
        p.tool,
        if ok { "ran" } else { "failed" },
        p.args,
        if text.is_empty() { "no output" } else { &text },
        started.elapsed().as_secs()
    );
    let title = format!("Could not {} {label}", p.verb);
    m.emit(
        auto_event(
            c,
            Kind::Escalation,
            "critical",
            title,
            detail,
            json!({"tool": p.tool, "tool_ok": ok, "text": text}),
        ),
        now_unix(),
    )
    .await;
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protection_names_its_reason() {
        let p = ProtectConfig { vmids: vec![105], pools: vec!["mgmt".into()], ..Default::default() };
        let t = |vmid, tags: &[&str], pool: Option<&str>| Target {
            vmid: Some(vmid),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            pool: pool.map(str::to_string),
            ..Default::default()
        };
        assert!(protected(&p, &t(100, &["jarvis", "Protected"], None)).is_some_and(|w| w.contains("tag 'Protected'")));
        assert!(protected(&p, &t(105, &[], None)).is_some_and(|w| w.contains("protect.vmids")));
        assert!(protected(&p, &t(106, &[], Some("mgmt"))).is_some_and(|w| w.contains("pool 'mgmt'")));
        assert_eq!(protected(&p, &t(101, &["home"], None)), None);
    }
}
