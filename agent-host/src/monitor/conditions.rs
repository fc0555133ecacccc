//! What the monitor watches: observations taken from each `pve://cluster/snapshot` (plus node
//! temperatures), and the per-(condition, resource) state machine with sustain delays,
//! hysteresis and flapping detection.

use std::collections::HashMap;
use std::sync::Arc;

use mcp_common::untrusted;
use serde::Serialize;
use serde_json::Value;

pub use super::track::{Phase, Sample, Track, Transition};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    NodeUnreachable,
    GuestCrashed,
    Cpu,
    Memory,
    Disk,
    Storage,
    Temperature,
    HaError,
    BackupFailed,
    TaskError,
}

impl Condition {
    pub const ALL: [Condition; 10] = [
        Condition::NodeUnreachable,
        Condition::GuestCrashed,
        Condition::Cpu,
        Condition::Memory,
        Condition::Disk,
        Condition::Storage,
        Condition::Temperature,
        Condition::HaError,
        Condition::BackupFailed,
        Condition::TaskError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::NodeUnreachable => "node_unreachable",
            Condition::GuestCrashed => "guest_crashed",
            Condition::Cpu => "cpu",
            Condition::Memory => "memory",
            Condition::Disk => "disk",
            Condition::Storage => "storage",
            Condition::Temperature => "temperature",
            Condition::HaError => "ha_error",
            Condition::BackupFailed => "backup_failed",
            Condition::TaskError => "task_error",
        }
    }

    pub fn parse(s: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Unit of the value, for explanations.
    pub fn unit(self) -> &'static str {
        match self {
            Condition::Cpu | Condition::Memory | Condition::Disk | Condition::Storage => "%",
            Condition::Temperature => " °C",
            Condition::TaskError => " failed task(s)",
            _ => "",
        }
    }

    /// Yes/no conditions (value 1 or 0).
    pub fn is_flag(self) -> bool {
        !matches!(
            self,
            Condition::Cpu | Condition::Memory | Condition::Disk | Condition::Storage | Condition::Temperature
        ) && self != Condition::TaskError
    }

    pub fn title(self) -> &'static str {
        match self {
            Condition::NodeUnreachable => "node unreachable",
            Condition::GuestCrashed => "guest crashed",
            Condition::Cpu => "CPU high",
            Condition::Memory => "memory high",
            Condition::Disk => "disk high",
            Condition::Storage => "storage high",
            Condition::Temperature => "temperature high",
            Condition::HaError => "HA error",
            Condition::BackupFailed => "backup failed",
            Condition::TaskError => "task errors",
        }
    }
}

/// What the monitor knows about the resource an observation is about (for runbooks).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Target {
    pub cluster: String,
    pub node: Option<String>,
    pub vmid: Option<u32>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub pool: Option<String>,
    pub hastate: Option<String>,
    pub lock: Option<String>,
    pub template: bool,
}

/// One value of one condition for one resource.
#[derive(Debug, Clone)]
pub struct Observation {
    pub condition: Condition,
    pub resource: String,
    pub value: f64,
    /// Human label, e.g. `VM 101 "home-assistant" on pve1`.
    pub label: String,
    /// Why the value is what it is (task that failed, stop task found, …).
    pub note: String,
    pub target: Arc<Target>,
}

/// Task types that stop a guest on purpose (a stopped guest with one of these is not a crash).
const STOPPING_TASKS: &[&str] = &[
    "qmstop",
    "qmshutdown",
    "vzstop",
    "vzshutdown",
    "qmsuspend",
    "vzsuspend",
    "qmpause",
    "hastop",
    "hamigrate",
    "qmigrate",
    "vzmigrate",
    "qmdestroy",
    "vzdestroy",
    "vzdump",
    "qmreboot",
    "vzreboot",
];

/// New failed tasks count for this long (seconds).
pub const TASK_WINDOW_SECS: f64 = 3600.0;

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn num(v: &Value, k: &str) -> f64 {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.parse().unwrap_or(0.0),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

fn pct(used: f64, max: f64) -> Option<f64> {
    (max > 0.0).then(|| (used / max * 100.0).clamp(0.0, 1000.0))
}

/// Text from the cluster for titles, notifications and mail subjects: sanitized, one line, short.
fn clean(s: &str) -> String {
    untrusted::sanitize(s).0.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect()
}

pub(crate) fn task_ok(status: &str) -> bool {
    status == "OK" || status.starts_with("WARNINGS")
}

struct SeenTask {
    first_tick: u64,
    first_time: f64,
    /// Part of the first snapshot (history from before the monitor started).
    baseline: bool,
    /// Last tick it was seen running.
    running_tick: Option<u64>,
}

/// Memory across snapshots that single snapshots lack: when each guest was last seen running,
/// when each task was first seen, the latest backup result per guest.
#[derive(Default)]
pub struct Extractor {
    tick: u64,
    running_at: HashMap<String, u64>,
    tasks_seen: HashMap<String, SeenTask>,
    /// A task list has been read once (its tasks are history, not news).
    baseline_done: bool,
    /// vmid → (starttime, ok, status) of its latest finished backup.
    backups: HashMap<u32, (f64, bool, String)>,
}

impl Extractor {
    /// Observations of one snapshot at time `now`; `temps` maps node → hottest sensor in °C.
    pub fn observe(&mut self, snapshot: &Value, now: f64, temps: &HashMap<String, f64>) -> Vec<Observation> {
        self.tick += 1;
        let tick = self.tick;
        let mut out = Vec::new();
        let no_clusters = Vec::new();
        let clusters = snapshot.get("clusters").and_then(Value::as_array).unwrap_or(&no_clusters);
        let multi = clusters.len() > 1;
        // Forget tasks that left every list: the lists hold the newest tasks, so a task that
        // dropped out never comes back. Only when every cluster sent its list.
        let lists: Vec<&Vec<Value>> =
            clusters.iter().filter_map(|c| c.get("tasks").and_then(Value::as_array)).collect();
        if !clusters.is_empty() && lists.len() == clusters.len() {
            let listed: std::collections::HashSet<&str> =
                lists.iter().flat_map(|l| l.iter()).filter_map(|t| str_of(t, "upid")).collect();
            self.tasks_seen.retain(|u, _| listed.contains(u.as_str()));
        }
        let mut any_tasks = false;
        for c in clusters {
            let cname = str_of(c, "name").unwrap_or("").to_string();
            let rid = |id: String| if multi { format!("{cname}:{id}") } else { id };
            let empty = Vec::new();
            let tasks = c.get("tasks").and_then(Value::as_array).unwrap_or(&empty);
            for t in tasks {
                if let Some(upid) = str_of(t, "upid") {
                    let seen = self.tasks_seen.entry(upid.to_string()).or_insert(SeenTask {
                        first_tick: tick,
                        first_time: now,
                        baseline: !self.baseline_done,
                        running_tick: None,
                    });
                    if str_of(t, "status") == Some("RUNNING") {
                        seen.running_tick = Some(tick);
                    }
                }
                if str_of(t, "type") == Some("vzdump")
                    && let (Some(vmid), Some(status)) =
                        (str_of(t, "id").and_then(|i| i.parse::<u32>().ok()), str_of(t, "status"))
                    && status != "RUNNING"
                {
                    let start = num(t, "starttime");
                    let e = self.backups.entry(vmid).or_insert((f64::MIN, true, String::new()));
                    if start >= e.0 {
                        *e = (start, task_ok(status), status.to_string());
                    }
                }
            }
            // Nodes.
            let had_tasks = c.get("tasks").is_some_and(Value::is_array);
            let nodes = c.get("nodes").and_then(Value::as_array).unwrap_or(&empty);
            let mut online: HashMap<String, bool> = HashMap::new();
            for n in nodes {
                let Some(node) = str_of(n, "node") else { continue };
                let status = str_of(n, "status").unwrap_or("unknown");
                let up = status == "online";
                online.insert(node.to_string(), up);
                let target =
                    Arc::new(Target { cluster: cname.clone(), node: Some(node.to_string()), ..Default::default() });
                let res = rid(format!("node/{node}"));
                let label = format!("node {node}");
                let mut push = |condition, value: f64, note: String| {
                    out.push(Observation {
                        condition,
                        resource: res.clone(),
                        value,
                        label: label.clone(),
                        note,
                        target: target.clone(),
                    })
                };
                push(Condition::NodeUnreachable, f64::from(u8::from(!up)), format!("Proxmox reports it {status}"));
                if up {
                    push(Condition::Cpu, num(n, "cpu") * 100.0, String::new());
                    if let Some(p) = pct(num(n, "mem"), num(n, "maxmem")) {
                        push(Condition::Memory, p, String::new());
                    }
                    if let Some(p) = pct(num(n, "disk"), num(n, "maxdisk")) {
                        push(Condition::Disk, p, "root filesystem".into());
                    }
                    if let Some(t) = temps.get(node) {
                        push(Condition::Temperature, *t, "hottest sensor".into());
                    }
                }
                // Failed tasks of this node first seen within the window (not those that were
                // already there when the monitor started).
                let mut failed: Vec<(&Value, f64)> = tasks
                    .iter()
                    .filter(|t| str_of(t, "node") == Some(node) && str_of(t, "type") != Some("vzdump"))
                    .filter(|t| str_of(t, "status").is_some_and(|s| s != "RUNNING" && !task_ok(s)))
                    .filter_map(|t| {
                        let seen = self.tasks_seen.get(str_of(t, "upid")?)?;
                        (!seen.baseline && now - seen.first_time < TASK_WINDOW_SECS).then_some((t, seen.first_time))
                    })
                    .collect();
                failed.sort_by(|a, b| b.1.total_cmp(&a.1));
                let note = failed
                    .first()
                    .map(|(t, _)| {
                        format!(
                            "latest: {} {} failed: {}",
                            clean(str_of(t, "type").unwrap_or("?")),
                            clean(str_of(t, "id").unwrap_or("")),
                            clean(str_of(t, "status").unwrap_or("?"))
                        )
                    })
                    .unwrap_or_default();
                push(Condition::TaskError, failed.len() as f64, note);
            }
            any_tasks |= had_tasks;
            // Guests.
            let guests = c.get("guests").and_then(Value::as_array).unwrap_or(&empty);
            for g in guests {
                let (Some(kind), Some(vmid)) = (str_of(g, "type"), g.get("vmid").and_then(Value::as_u64)) else {
                    continue;
                };
                let vmid = vmid as u32;
                let node = str_of(g, "node").unwrap_or("?").to_string();
                let status = str_of(g, "status").unwrap_or("unknown");
                let name = str_of(g, "name").map(clean);
                let target = Arc::new(Target {
                    cluster: cname.clone(),
                    node: Some(node.clone()),
                    vmid: Some(vmid),
                    kind: Some(kind.to_string()),
                    name: name.clone(),
                    tags: str_of(g, "tags")
                        .unwrap_or("")
                        .split([';', ',', ' '])
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect(),
                    pool: str_of(g, "pool").map(str::to_string),
                    hastate: str_of(g, "hastate").map(str::to_string),
                    lock: str_of(g, "lock").map(str::to_string),
                    template: num(g, "template") > 0.0,
                });
                if target.template {
                    continue;
                }
                let res = rid(format!("{kind}/{vmid}"));
                let what = if kind == "lxc" { "CT" } else { "VM" };
                let label = match &name {
                    Some(n) => format!("{what} {vmid} \"{n}\" on {node}"),
                    None => format!("{what} {vmid} on {node}"),
                };
                let mut push = |condition, value: f64, note: String| {
                    out.push(Observation {
                        condition,
                        resource: res.clone(),
                        value,
                        label: label.clone(),
                        note,
                        target: target.clone(),
                    })
                };
                let (crashed, note) = match status {
                    "running" => {
                        self.running_at.insert(res.clone(), tick);
                        (false, String::new())
                    }
                    "stopped" => match self.running_at.get(&res).copied() {
                        Some(last) => {
                            let stopper = tasks.iter().find(|t| {
                                str_of(t, "id") == Some(vmid.to_string().as_str())
                                    && str_of(t, "type").is_some_and(|ty| STOPPING_TASKS.contains(&ty))
                                    // New since the guest was last seen running, or still
                                    // running then (a shutdown in progress).
                                    && str_of(t, "upid")
                                        .and_then(|u| self.tasks_seen.get(u))
                                        .is_some_and(|s| s.first_tick > last || s.running_tick.is_some_and(|r| r >= last))
                            });
                            match stopper {
                                Some(t) => (
                                    false,
                                    format!(
                                        "stopped by task {} of {}",
                                        clean(str_of(t, "type").unwrap_or("?")),
                                        clean(str_of(t, "user").unwrap_or("?"))
                                    ),
                                ),
                                None => (true, "was running, now stopped without a stop or shutdown task".into()),
                            }
                        }
                        None => (false, "stopped since the monitor started".into()),
                    },
                    // The node is gone (node_unreachable covers it); after it returns, a
                    // stopped guest is not reported as crashed.
                    "unknown" => {
                        self.running_at.remove(&res);
                        (false, "node offline".into())
                    }
                    other => (false, format!("status {}", clean(other))),
                };
                push(Condition::GuestCrashed, f64::from(u8::from(crashed)), note);
                if status == "running" {
                    push(Condition::Cpu, num(g, "cpu") * 100.0, String::new());
                    if let Some(p) = pct(num(g, "mem"), num(g, "maxmem")) {
                        push(Condition::Memory, p, String::new());
                    }
                    if kind == "lxc"
                        && let Some(p) = pct(num(g, "disk"), num(g, "maxdisk"))
                    {
                        push(Condition::Disk, p, "root disk".into());
                    }
                }
                let ha = target.hastate.clone().unwrap_or_default();
                if !ha.is_empty() {
                    push(Condition::HaError, f64::from(u8::from(ha == "error")), format!("HA state {}", clean(&ha)));
                }
                if let Some((_, ok, st)) = self.backups.get(&vmid) {
                    let note = if *ok { "latest backup OK".into() } else { format!("latest backup: {}", clean(st)) };
                    push(Condition::BackupFailed, f64::from(u8::from(!ok)), note);
                }
            }
            // Storage: shared storage once, local storage per node.
            let storage = c.get("storage").and_then(Value::as_array).unwrap_or(&empty);
            let mut shared_done = std::collections::HashSet::new();
            for s in storage {
                let (Some(id), Some(node)) = (str_of(s, "storage"), str_of(s, "node")) else { continue };
                if str_of(s, "status") != Some("available") {
                    continue;
                }
                let shared = num(s, "shared") > 0.0;
                if shared && !shared_done.insert(id.to_string()) {
                    continue;
                }
                let Some(p) = pct(num(s, "disk"), num(s, "maxdisk")) else { continue };
                let (res, label) = if shared {
                    (rid(format!("storage/{id}")), format!("storage {id} (shared)"))
                } else {
                    (rid(format!("storage/{node}/{id}")), format!("storage {id} on {node}"))
                };
                out.push(Observation {
                    condition: Condition::Storage,
                    resource: res,
                    value: p,
                    label,
                    note: String::new(),
                    target: Arc::new(Target {
                        cluster: cname.clone(),
                        node: Some(node.to_string()),
                        ..Default::default()
                    }),
                });
            }
        }
        self.baseline_done |= any_tasks;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snap(status: &str, tasks: Value) -> Value {
        json!({"clusters": [{"name": "homelab", "nodes": [{"node": "pve1", "status": "online", "cpu": 0.5, "mem": 50, "maxmem": 100, "disk": 1, "maxdisk": 10}],
            "guests": [{"type": "qemu", "vmid": 101, "node": "pve1", "name": "ha", "status": status, "cpu": 0.1, "mem": 1, "maxmem": 2}],
            "storage": [], "tasks": tasks}]})
    }

    fn crashed(obs: &[Observation]) -> Option<f64> {
        obs.iter().find(|o| o.condition == Condition::GuestCrashed).map(|o| o.value)
    }

    #[test]
    fn a_stop_without_a_stop_task_is_a_crash_and_one_with_a_task_is_not() {
        let old_stop = json!({"upid": "UPID:old", "node": "pve1", "type": "qmstop", "id": "101", "user": "root@pam", "status": "OK", "starttime": 1});
        let mut x = Extractor::default();
        let none = HashMap::new();
        assert_eq!(crashed(&x.observe(&snap("stopped", json!([old_stop.clone()])), 0.0, &none)), Some(0.0));
        assert_eq!(crashed(&x.observe(&snap("running", json!([old_stop.clone()])), 1.0, &none)), Some(0.0));
        let obs = x.observe(&snap("stopped", json!([old_stop.clone()])), 2.0, &none);
        assert_eq!(crashed(&obs), Some(1.0), "an old stop task does not explain a new stop");
        let new_stop = json!({"upid": "UPID:new", "node": "pve1", "type": "qmshutdown", "id": "101", "user": "alice@pve", "status": "OK", "starttime": 5});
        let obs = x.observe(&snap("stopped", json!([new_stop, old_stop])), 3.0, &none);
        assert_eq!(crashed(&obs), Some(0.0));
        assert!(obs.iter().any(|o| o.note.contains("qmshutdown of alice@pve")));
    }

    #[test]
    fn resources_temperatures_ha_and_storage_are_observed() {
        let mut x = Extractor::default();
        let temps: HashMap<String, f64> = [("pve1".to_string(), 83.5)].into();
        let snap = json!({"clusters": [{"name": "homelab",
            "nodes": [{"node": "pve1", "status": "online", "cpu": 0.925, "mem": 90, "maxmem": 100, "disk": 5, "maxdisk": 10},
                      {"node": "pve2", "status": "offline"}],
            "guests": [{"type": "qemu", "vmid": 100, "node": "pve1", "status": "running", "hastate": "error", "tags": "jarvis;protected", "pool": "mgmt"},
                       {"type": "lxc", "vmid": 200, "node": "pve1", "status": "running", "disk": 9, "maxdisk": 10},
                       {"type": "qemu", "vmid": 900, "node": "pve1", "status": "stopped", "template": 1}],
            "storage": [{"storage": "nas", "node": "pve1", "status": "available", "shared": 1, "disk": 88, "maxdisk": 100},
                        {"storage": "nas", "node": "pve3", "status": "available", "shared": 1, "disk": 88, "maxdisk": 100},
                        {"storage": "local", "node": "pve1", "status": "available", "shared": 0, "disk": 1, "maxdisk": 4}],
            "tasks": []}]});
        let obs = x.observe(&snap, 0.0, &temps);
        let get = |c: Condition, r: &str| obs.iter().find(|o| o.condition == c && o.resource == r).map(|o| o.value);
        assert_eq!(get(Condition::Cpu, "node/pve1").map(|v| v.round()), Some(93.0));
        assert_eq!(get(Condition::Memory, "node/pve1"), Some(90.0));
        assert_eq!(get(Condition::Temperature, "node/pve1"), Some(83.5));
        assert_eq!(get(Condition::NodeUnreachable, "node/pve2"), Some(1.0));
        assert_eq!(get(Condition::Cpu, "node/pve2"), None, "no usage figures for an offline node");
        assert_eq!(get(Condition::HaError, "qemu/100"), Some(1.0));
        assert_eq!(get(Condition::Disk, "lxc/200"), Some(90.0));
        assert_eq!(get(Condition::GuestCrashed, "qemu/900"), None, "templates are not watched");
        assert_eq!(get(Condition::Storage, "storage/nas"), Some(88.0));
        assert_eq!(obs.iter().filter(|o| o.resource == "storage/nas").count(), 1, "shared storage once");
        assert_eq!(get(Condition::Storage, "storage/pve1/local"), Some(25.0));
        let t = &obs.iter().find(|o| o.resource == "qemu/100").map(|o| o.target.clone()).unwrap_or_default();
        assert_eq!((t.tags.clone(), t.pool.as_deref()), (vec!["jarvis".to_string(), "protected".into()], Some("mgmt")));
    }

    #[test]
    fn cluster_text_is_one_clean_line() {
        assert_eq!(clean("job failed\r\nBcc: evil@example.org\u{202e}"), "job failed Bcc: evil@example.org");
    }

    #[test]
    fn failed_backups_and_new_task_errors_are_observed() {
        let mut x = Extractor::default();
        let none = HashMap::new();
        let base = json!([{"upid": "UPID:a", "node": "pve1", "type": "qmstart", "id": "101", "status": "start failed", "starttime": 1}]);
        let obs = x.observe(&snap("running", base.clone()), 0.0, &none);
        let task_errors = |o: &[Observation]| o.iter().find(|o| o.condition == Condition::TaskError).map(|o| o.value);
        assert_eq!(task_errors(&obs), Some(0.0), "failures from before the monitor started do not count");
        let mut tasks = base.as_array().cloned().unwrap_or_default();
        tasks.push(json!({"upid": "UPID:b", "node": "pve1", "type": "qmsnapshot", "id": "101", "status": "snapshot feature is not available", "starttime": 2}));
        tasks.push(json!({"upid": "UPID:c", "node": "pve1", "type": "vzdump", "id": "101", "status": "job errors", "starttime": 3}));
        let obs = x.observe(&snap("running", Value::Array(tasks)), 10.0, &none);
        assert_eq!(task_errors(&obs), Some(1.0));
        assert_eq!(obs.iter().find(|o| o.condition == Condition::BackupFailed).map(|o| o.value), Some(1.0));
    }
}
