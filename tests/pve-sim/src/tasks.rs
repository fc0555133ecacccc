//! Worker tasks: real-format UPIDs, logs that grow while the task runs, exit statuses parsed
//! from the last log line, interruption, and the node task archive.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use crate::model::Cluster;
use crate::sim::Sim;

/// How a task ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Exit {
    Ok,
    Warnings(u32),
    Error(String),
    /// The worker died without writing a final line (node crash, SIGKILL).
    Unexpected,
}

impl Exit {
    /// Parse an exit text as the fault API gives it.
    pub fn parse(msg: &str) -> Exit {
        if msg == "OK" {
            Exit::Ok
        } else if let Some(n) = msg.strip_prefix("WARNINGS: ").and_then(|n| n.parse().ok()) {
            Exit::Warnings(n)
        } else if msg == "unexpected status" {
            Exit::Unexpected
        } else {
            Exit::Error(msg.to_string())
        }
    }
}

type AbortFn = Box<dyn FnOnce(&mut Cluster) + Send>;

pub struct Task {
    pub upid: String,
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: i64,
    pub kind: String,
    pub id: String,
    /// `user@realm` or `user@realm!token`.
    pub user: String,
    pub log: Vec<String>,
    /// (endtime, exitstatus) once stopped.
    pub end: Option<(i64, String)>,
    pub vmid: Option<u32>,
    /// Undo the task's in-flight state (locks) when it is interrupted.
    pub on_abort: Option<AbortFn>,
    seq: u64,
}

impl Task {
    pub fn running(&self) -> bool {
        self.end.is_none()
    }

    /// Owner user id without the token part.
    pub fn userid(&self) -> &str {
        self.user.split('!').next().unwrap_or(&self.user)
    }

    pub fn tokenid(&self) -> Option<&str> {
        self.user.split_once('!').map(|(_, t)| t)
    }

    /// `GET /nodes/{node}/tasks/{upid}/status` body.
    pub fn status_json(&self) -> Value {
        let mut v = json!({
            "upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
            "starttime": self.starttime, "type": self.kind, "id": self.id, "user": self.userid(),
            "status": if self.running() { "running" } else { "stopped" },
        });
        if let Some(t) = self.tokenid() {
            v["tokenid"] = json!(t);
        }
        if let Some((_, exit)) = &self.end {
            v["exitstatus"] = json!(exit);
        }
        v
    }

    /// Row of `GET /nodes/{node}/tasks` and `/cluster/tasks`.
    pub fn list_json(&self) -> Value {
        let mut v = json!({
            "upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
            "starttime": self.starttime, "type": self.kind, "id": self.id, "user": self.user,
        });
        match &self.end {
            Some((end, exit)) => {
                v["endtime"] = json!(end);
                v["status"] = json!(exit);
            }
            None => {
                v["status"] = json!("RUNNING");
                v["saved"] = json!("0");
            }
        }
        if let Some(t) = self.tokenid() {
            v["tokenid"] = json!(t);
        }
        v
    }

    /// Class of the exit status for `statusfilter`.
    pub fn status_class(&self) -> &'static str {
        match &self.end {
            None => "running",
            Some((_, s)) if s == "OK" => "ok",
            Some((_, s)) if s.starts_with("WARNINGS") => "warning",
            Some((_, s)) if s == "unexpected status" => "unknown",
            Some(_) => "error",
        }
    }
}

/// Every task of the cluster, per node in start order.
#[derive(Default)]
pub struct Tasks {
    by_node: BTreeMap<String, BTreeMap<u64, Task>>,
    index: HashMap<String, (String, u64)>,
    seq: u64,
}

/// Tasks kept per node before the oldest are forgotten.
const ARCHIVE_PER_NODE: usize = 3000;

impl Tasks {
    pub fn get(&self, upid: &str) -> Option<&Task> {
        let (n, s) = self.index.get(upid)?;
        self.by_node.get(n)?.get(s)
    }

    pub fn get_mut(&mut self, upid: &str) -> Option<&mut Task> {
        let (n, s) = self.index.get(upid)?;
        self.by_node.get_mut(n)?.get_mut(s)
    }

    pub fn is_running(&self, upid: &str) -> bool {
        self.get(upid).is_some_and(Task::running)
    }

    /// Tasks of one node, newest first.
    pub fn node_tasks(&self, node: &str) -> impl Iterator<Item = &Task> {
        self.by_node.get(node).into_iter().flat_map(|m| m.values().rev())
    }

    /// Every task, newest first.
    pub fn all(&self) -> Vec<&Task> {
        let mut v: Vec<&Task> = self.by_node.values().flat_map(|m| m.values()).collect();
        v.sort_by(|a, b| b.starttime.cmp(&a.starttime).then(b.seq.cmp(&a.seq)));
        v
    }

    /// Any running task holding `vmid` (used for "VM is locked" style checks in tests).
    pub fn running_for(&self, vmid: u32) -> impl Iterator<Item = &Task> {
        self.by_node.values().flat_map(|m| m.values()).filter(move |t| t.running() && t.vmid == Some(vmid))
    }

    fn insert(&mut self, task: Task) {
        let node = task.node.clone();
        let seq = task.seq;
        self.index.insert(task.upid.clone(), (node.clone(), seq));
        let m = self.by_node.entry(node).or_default();
        m.insert(seq, task);
        while m.len() > ARCHIVE_PER_NODE {
            let Some((&oldest, t)) = m.iter().next() else { break };
            if t.running() {
                break;
            }
            if let Some(t) = m.remove(&oldest) {
                self.index.remove(&t.upid);
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) prefix used in migration and backup logs.
pub fn log_time(epoch: f64) -> String {
    let e = epoch as i64;
    let (y, m, d) = crate::wire::civil_from_days(e.div_euclid(86_400));
    let s = e.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Parse a UPID into (node, pid, pstart, starttime, type, id, user).
pub fn parse_upid(upid: &str) -> Option<(String, u32, u64, i64, String, String, String)> {
    let rest = upid.strip_prefix("UPID:")?;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 8 {
        return None;
    }
    let node = parts[0];
    if node.is_empty() || !node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let pid = u32::from_str_radix(parts[1], 16).ok()?;
    let pstart = u64::from_str_radix(parts[2], 16).ok()?;
    let start = i64::from_str_radix(parts[3], 16).ok()?;
    Some((node.into(), pid, pstart, start, parts[4].into(), parts[5].into(), parts[6].into()))
}

impl Sim {
    /// Fork a worker on `node`; returns its UPID. `kind` is the worker type (`qmstart`), `id`
    /// usually the vmid.
    pub fn start_task(&mut self, node: &str, kind: &str, id: &str, user: &str, vmid: Option<u32>) -> String {
        let now = self.now;
        let (pid, pstart) = match self.cluster.node_mut(node) {
            Some(n) => {
                n.next_pid = n.next_pid.wrapping_add(1 + (n.next_pid % 7));
                let ticks = ((now - n.booted_at).max(0.0) * 100.0) as u64;
                (n.next_pid, n.pstart_base + ticks)
            }
            None => (1, 1),
        };
        let starttime = now as i64;
        let upid = format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:");
        self.tasks.seq += 1;
        let seq = self.tasks.seq;
        self.tasks.insert(Task {
            upid: upid.clone(),
            node: node.into(),
            pid,
            pstart,
            starttime,
            kind: kind.into(),
            id: id.into(),
            user: user.into(),
            log: Vec::new(),
            end: None,
            vmid,
            on_abort: None,
            seq,
        });
        upid
    }

    pub fn task_log(&mut self, upid: &str, line: impl Into<String>) {
        if let Some(t) = self.tasks.get_mut(upid) {
            t.log.push(line.into());
        }
    }

    pub fn set_abort(&mut self, upid: &str, f: impl FnOnce(&mut Cluster) + Send + 'static) {
        if let Some(t) = self.tasks.get_mut(upid) {
            t.on_abort = Some(Box::new(f));
        }
    }

    /// End a running task with `exit`, writing the final log line as Proxmox does.
    pub fn finish_task(&mut self, upid: &str, exit: Exit) {
        let now = self.now_i();
        let Some(t) = self.tasks.get_mut(upid) else { return };
        if !t.running() {
            return;
        }
        t.on_abort = None;
        let status = match &exit {
            Exit::Ok => {
                t.log.push("TASK OK".into());
                "OK".to_string()
            }
            Exit::Warnings(n) => {
                t.log.push(String::new());
                t.log.push(format!("TASK WARNINGS: {n}"));
                format!("WARNINGS: {n}")
            }
            Exit::Error(msg) => {
                let one_line = msg.trim_end().replace('\n', " ");
                t.log.push(format!("TASK ERROR: {one_line}"));
                one_line
            }
            Exit::Unexpected => "unexpected status".to_string(),
        };
        t.end = Some((now, status));
    }

    /// `DELETE /nodes/{node}/tasks/{upid}`: the worker receives SIGTERM.
    pub fn interrupt_task(&mut self, upid: &str) {
        let abort = self.tasks.get_mut(upid).filter(|t| t.running()).and_then(|t| t.on_abort.take());
        if let Some(f) = abort {
            f(&mut self.cluster);
        }
        self.finish_task(upid, Exit::Error("received interrupt".into()));
    }

    /// Schedule a step of a task; it is skipped if the task ended meanwhile (interrupted).
    pub fn task_step(&mut self, upid: &str, delay: f64, f: impl FnOnce(&mut Sim) + Send + 'static) {
        let u = upid.to_string();
        self.after(delay, move |sim| {
            if sim.tasks.is_running(&u) {
                f(sim);
            }
        });
    }

    /// An injected failure for this worker, if one is pending.
    pub fn injected_failure(&mut self, kind: &str, vmid: Option<u32>) -> Option<Exit> {
        self.faults.take_task_failure(kind, vmid).map(|m| Exit::parse(&m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_upids() {
        let p = parse_upid("UPID:proxmox-noris:00011DE0:0022900B:645CE78E:qmcreate:101:root@pam:").expect("valid");
        assert_eq!(p.0, "proxmox-noris");
        assert_eq!(p.4, "qmcreate");
        assert!(parse_upid("UPID:pve:000CFC5C:03E8D0C3:6194806C:aptupdate::root@pam:").is_some());
        assert!(parse_upid("UPID:pve:zz:1:1:x:1:root@pam:").is_none());
        assert!(parse_upid("garbage").is_none());
    }
}
