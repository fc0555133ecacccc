//! The simulator's whole state and its event queue.
//!
//! Time only moves when someone looks: every request first calls [`Sim::advance_to`] with the
//! clock's current time, which runs every scheduled event (task steps, HA decisions) that is due,
//! in time order and with `now` set to the event's own time. That keeps timestamps exact and
//! behaviour deterministic for a given sequence of requests, however fast the clock runs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::Deserialize;

use crate::Profile;
use crate::auth::Access;
use crate::model::Cluster;
use crate::tasks::Tasks;

/// Durations of the simulated operations, in simulated seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    pub start: f64,
    pub stop: f64,
    pub shutdown: f64,
    pub reset: f64,
    pub suspend: f64,
    pub resume: f64,
    pub snapshot: f64,
    pub snapshot_vmstate: f64,
    pub delete_snapshot: f64,
    pub rollback: f64,
    pub migrate_offline: f64,
    pub migrate_online: f64,
    /// Backup speed in bytes per simulated second, plus a fixed overhead.
    pub backup_rate: f64,
    pub backup_overhead: f64,
    /// HA request tasks (`hastart`/`hastop`/`hamigrate`) and the CRM reaction delay.
    pub ha_request: f64,
    pub crm_delay: f64,
    /// HA fencing and recovery after a node goes offline (Proxmox: ~60 s and ~120 s).
    pub ha_fence: f64,
    pub ha_recover: f64,
    /// ACPI shutdown default timeout before `VM quit/powerdown failed - got timeout`.
    pub shutdown_timeout: f64,
    /// How long a worker waits for a held config flock.
    pub flock_timeout: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            start: 2.0,
            stop: 1.0,
            shutdown: 4.0,
            reset: 0.5,
            suspend: 1.0,
            resume: 0.5,
            snapshot: 3.0,
            snapshot_vmstate: 8.0,
            delete_snapshot: 2.0,
            rollback: 3.0,
            migrate_offline: 15.0,
            migrate_online: 25.0,
            backup_rate: 400.0 * 1024.0 * 1024.0,
            backup_overhead: 5.0,
            ha_request: 0.5,
            crm_delay: 10.0,
            ha_fence: 60.0,
            ha_recover: 120.0,
            shutdown_timeout: 60.0,
            flock_timeout: 10.0,
        }
    }
}

/// Injected failure of matching API calls.
#[derive(Debug, Clone, Deserialize)]
pub struct FailRule {
    /// Substring of the path (below `/api2/json`), or any path when absent.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    pub status: u16,
    #[serde(default)]
    pub message: Option<String>,
    /// How many calls to fail; 0 = until cleared.
    #[serde(default = "one")]
    pub count: u32,
}

/// Injected failure of the next matching task.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskFailRule {
    /// Worker type (`qmstart`, `vzdump`, …), or any when absent.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub vmid: Option<u32>,
    /// Exit status text; `WARNINGS: n` makes a task that succeeds with warnings,
    /// `unexpected status` one that dies without a final line.
    pub message: String,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Extra latency added to every API call, in real milliseconds.
    pub latency_ms: u64,
    pub fail_calls: Vec<FailRule>,
    pub fail_tasks: Vec<TaskFailRule>,
}

impl Faults {
    /// Consume a matching call failure, if any.
    pub fn take_call_failure(&mut self, method: &str, path: &str) -> Option<FailRule> {
        let idx = self.fail_calls.iter().position(|r| {
            r.path.as_deref().is_none_or(|p| path.contains(p))
                && r.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let rule = self.fail_calls[idx].clone();
        if rule.count == 1 {
            self.fail_calls.remove(idx);
        } else if rule.count > 1 {
            self.fail_calls[idx].count -= 1;
        }
        Some(rule)
    }

    /// Consume a matching task failure, if any.
    pub fn take_task_failure(&mut self, kind: &str, vmid: Option<u32>) -> Option<String> {
        let idx = self
            .fail_tasks
            .iter()
            .position(|r| r.kind.as_deref().is_none_or(|k| k == kind) && r.vmid.is_none_or(|v| Some(v) == vmid))?;
        let rule = self.fail_tasks[idx].clone();
        if rule.count <= 1 {
            self.fail_tasks.remove(idx);
        } else {
            self.fail_tasks[idx].count -= 1;
        }
        Some(rule.message)
    }
}

type EventFn = Box<dyn FnOnce(&mut Sim) + Send>;

struct Event {
    at: f64,
    seq: u64,
    run: EventFn,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then_with(|| other.seq.cmp(&self.seq))
    }
}

/// One API call as the simulator saw it (tests use the log to prove what reached "Proxmox").
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallRecord {
    pub at: f64,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `user@realm` or `user@realm!token`; empty when unauthenticated.
    pub user: String,
}

/// Calls kept in the log; older ones are dropped.
const CALL_LOG_MAX: usize = 100_000;

pub struct Sim {
    pub profile: Profile,
    /// Simulated epoch seconds of the event being processed (or of the last advance).
    pub now: f64,
    pub cluster: Cluster,
    pub access: Access,
    pub tasks: Tasks,
    pub timing: Timing,
    pub faults: Faults,
    /// PVE version string shown by `/version` and nodes.
    pub version: String,
    pub calls: std::collections::VecDeque<CallRecord>,
    events: BinaryHeap<Event>,
    seq: u64,
}

impl Sim {
    pub fn new(profile: Profile, cluster: Cluster, access: Access, timing: Timing, now: f64) -> Self {
        let version = match profile {
            Profile::Pve9 => "9.1.1",
            Profile::Pve8 => "8.4.14",
        }
        .to_string();
        Self {
            profile,
            now,
            cluster,
            access,
            tasks: Tasks::default(),
            timing,
            faults: Faults::default(),
            version,
            calls: std::collections::VecDeque::new(),
            events: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn now_i(&self) -> i64 {
        self.now as i64
    }

    /// Run `f` at simulated time `at`.
    pub fn schedule(&mut self, at: f64, f: impl FnOnce(&mut Sim) + Send + 'static) {
        self.seq += 1;
        self.events.push(Event { at, seq: self.seq, run: Box::new(f) });
    }

    /// Run `f` after `delay` simulated seconds.
    pub fn after(&mut self, delay: f64, f: impl FnOnce(&mut Sim) + Send + 'static) {
        let at = self.now + delay.max(0.0);
        self.schedule(at, f);
    }

    /// Process every event due up to `t`.
    pub fn advance_to(&mut self, t: f64) {
        while self.events.peek().is_some_and(|e| e.at <= t) {
            let Some(ev) = self.events.pop() else { break };
            if ev.at > self.now {
                self.now = ev.at;
            }
            (ev.run)(self);
        }
        if t > self.now {
            self.now = t;
        }
    }

    pub fn record_call(&mut self, method: &str, path: &str, status: u16, user: String) {
        if self.calls.len() >= CALL_LOG_MAX {
            self.calls.pop_front();
        }
        self.calls.push_back(CallRecord { at: self.now, method: method.into(), path: path.into(), status, user });
    }

    pub fn pending_events(&self) -> usize {
        self.events.len()
    }
}
