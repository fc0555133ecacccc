//! How a guest worker runs: wait for the config flock, run its in-task checks, then play its
//! plan step by step and end with the right exit status (or an injected one).

use crate::model::Cluster;
use crate::sim::Sim;
use crate::tasks::Exit;

type Step = Box<dyn FnOnce(&mut Sim, &str) + Send>;

/// The timed steps of a worker after its checks passed. The task ends `OK` after the last step.
#[derive(Default)]
pub struct Plan {
    steps: Vec<(f64, Step)>,
    exit: Option<Exit>,
}

impl Plan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `f` `delay` seconds after the previous step.
    pub fn then(mut self, delay: f64, f: impl FnOnce(&mut Sim, &str) + Send + 'static) -> Self {
        self.steps.push((delay, Box::new(f)));
        self
    }

    /// Add a log line `delay` seconds after the previous step.
    pub fn log(self, delay: f64, line: impl Into<String>) -> Self {
        let line = line.into();
        self.then(delay, move |sim, upid| sim.task_log(upid, line))
    }

    /// End with this status instead of `OK` (e.g. `WARNINGS: 1`).
    pub fn exit(mut self, exit: Exit) -> Self {
        self.exit = Some(exit);
        self
    }
}

/// The result of a worker's in-task checks.
pub type Checked = Result<Plan, String>;

/// Start the worker `upid` for guest `vmid`: after `delay` it takes the config flock (waiting
/// up to the flock timeout), runs `check`, and then its plan.
pub fn run(sim: &mut Sim, upid: &str, vmid: u32, check: impl FnOnce(&mut Sim, &str) -> Checked + Send + 'static) {
    let u = upid.to_string();
    sim.task_step(upid, 0.05, move |sim| {
        let held = sim.cluster.guests.get(&vmid).and_then(|g| g.flock_until.map(|t| (t, g.lock_file())));
        match held {
            Some((until, file)) if until > sim.now => {
                sim.task_log(&u, "trying to acquire lock...");
                let wait = until - sim.now;
                let timeout = sim.timing.flock_timeout;
                if wait > timeout {
                    let u2 = u.clone();
                    sim.task_step(&u, timeout, move |sim| {
                        sim.finish_task(&u2, Exit::Error(format!("can't lock file '{file}' - got timeout")));
                    });
                } else {
                    let u2 = u.clone();
                    sim.task_step(&u, wait, move |sim| {
                        sim.task_log(&u2, " OK");
                        checked(sim, &u2, vmid, check);
                    });
                }
            }
            _ => checked(sim, &u, vmid, check),
        }
    });
}

fn checked(sim: &mut Sim, upid: &str, vmid: u32, check: impl FnOnce(&mut Sim, &str) -> Checked) {
    let kind = sim.tasks.get(upid).map(|t| t.kind.clone()).unwrap_or_default();
    let injected = sim.injected_failure(&kind, Some(vmid));
    if let Some(Exit::Error(_) | Exit::Unexpected) = &injected {
        let exit = injected.unwrap_or(Exit::Ok);
        if let Some(f) = sim.tasks.get_mut(upid).and_then(|t| t.on_abort.take()) {
            f(&mut sim.cluster);
        }
        sim.finish_task(upid, exit);
        return;
    }
    match check(sim, upid) {
        Err(msg) => {
            if let Some(f) = sim.tasks.get_mut(upid).and_then(|t| t.on_abort.take()) {
                f(&mut sim.cluster);
            }
            sim.finish_task(upid, Exit::Error(msg));
        }
        Ok(plan) => {
            let exit = injected.or(plan.exit).unwrap_or(Exit::Ok);
            let mut at = 0.0;
            for (delay, step) in plan.steps {
                at += delay;
                let u = upid.to_string();
                sim.task_step(upid, at, move |sim| step(sim, &u));
            }
            let u = upid.to_string();
            sim.task_step(upid, at, move |sim| sim.finish_task(&u, exit));
        }
    }
}

/// Set a config lock for the duration of a task and clear it again if the task is interrupted.
pub fn hold_lock(sim: &mut Sim, upid: &str, vmid: u32, lock: &str) {
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.lock = Some(lock.to_string());
    }
    let l = lock.to_string();
    sim.set_abort(upid, move |c: &mut Cluster| {
        if let Some(g) = c.guests.get_mut(&vmid)
            && g.lock.as_deref() == Some(l.as_str())
        {
            g.lock = None;
        }
    });
}

pub fn release_lock(sim: &mut Sim, vmid: u32) {
    if let Some(g) = sim.cluster.guests.get_mut(&vmid) {
        g.lock = None;
    }
}
