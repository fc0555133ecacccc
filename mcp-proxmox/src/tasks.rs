//! Following a Proxmox task (UPID) to its end, with MCP progress notifications carrying the
//! latest log line, bounded by the configured wait. A task that outlives the wait is handed back
//! as a job id (its UPID) that `task_status` reads later — also after a server restart, since
//! Proxmox keeps the task.

use std::time::{Duration, Instant};

use mcp_common::tool::CallCtx;
use mcp_common::untrusted;
use serde::Serialize;

use crate::pve::PveError;
use crate::pve::types::{LogLine, TaskStatus, upid_node};
use crate::service::Cluster;

/// Lines of log kept in results.
pub const LOG_TAIL: usize = 12;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TaskOutcome {
    pub upid: String,
    pub node: String,
    /// Worker type (`qmstart`, `vzdump`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub finished: bool,
    /// `OK`, `WARNINGS: n` or Proxmox's error text, once finished.
    pub exitstatus: Option<String>,
    pub succeeded: bool,
    /// Last log lines (sanitised).
    pub log_tail: Vec<String>,
    pub seconds: f64,
}

impl TaskOutcome {
    /// One readable line.
    pub fn summary(&self) -> String {
        match (&self.exitstatus, self.finished) {
            (Some(e), true) if self.succeeded => format!("task {} finished: {e}", self.kind),
            (Some(e), true) => format!("task {} failed: {e}", self.kind),
            _ => format!(
                "task {} still running after {:.0}s; follow it with task_status (job id {})",
                self.kind, self.seconds, self.upid
            ),
        }
    }
}

async fn status(c: &Cluster, node: &str, upid: &str) -> Result<TaskStatus, PveError> {
    c.client.get(&crate::pve::path(&["nodes", node, "tasks", upid, "status"]), &[]).await
}

/// Log lines from `start` (0-based) on.
pub async fn log_from(c: &Cluster, node: &str, upid: &str, start: u64, limit: u64) -> Result<Vec<String>, PveError> {
    let lines: Vec<LogLine> = c
        .client
        .get(
            &crate::pve::path(&["nodes", node, "tasks", upid, "log"]),
            &[("start", start.to_string()), ("limit", limit.to_string())],
        )
        .await?;
    Ok(lines.into_iter().filter(|l| l.t != "no content").map(|l| untrusted::sanitize(&l.t).0).collect())
}

/// The last `n` log lines.
pub async fn log_tail(c: &Cluster, node: &str, upid: &str, n: usize) -> Result<Vec<String>, PveError> {
    let all = log_from(c, node, upid, 0, 5000).await?;
    Ok(all[all.len().saturating_sub(n)..].to_vec())
}

/// Follow `upid` until it stops or `wait` passes.
pub async fn follow(
    c: &Cluster,
    upid: &str,
    ctx: &CallCtx,
    wait: Duration,
    poll: Duration,
) -> Result<TaskOutcome, PveError> {
    let node = upid_node(upid).ok_or_else(|| PveError::Protocol(format!("not a UPID: {upid}")))?.to_string();
    let started = Instant::now();
    let mut seen = 0u64;
    let mut tail: Vec<String> = Vec::new();
    let mut step = 0u32;
    loop {
        let st = status(c, &node, upid).await?;
        let new = log_from(c, &node, upid, seen, 500).await.unwrap_or_default();
        seen += new.len() as u64;
        tail.extend(new);
        if tail.len() > LOG_TAIL {
            tail.drain(..tail.len() - LOG_TAIL);
        }
        let outcome = |finished: bool| TaskOutcome {
            upid: upid.to_string(),
            node: node.clone(),
            kind: st.kind.clone(),
            finished,
            exitstatus: st.exitstatus.clone(),
            succeeded: finished && st.succeeded(),
            log_tail: tail.clone(),
            seconds: started.elapsed().as_secs_f64(),
        };
        if !st.running() {
            c.invalidate();
            return Ok(outcome(true));
        }
        if started.elapsed() >= wait {
            return Ok(outcome(false));
        }
        step += 1;
        let msg = tail.last().cloned().unwrap_or_else(|| format!("{} running", st.kind));
        ctx.progress(f64::from(step), None, msg).await;
        tokio::select! {
            _ = tokio::time::sleep(poll.min(wait.saturating_sub(started.elapsed())).max(Duration::from_millis(50))) => {}
            _ = ctx.cancel.cancelled() => return Ok(outcome(false)),
        }
    }
}
