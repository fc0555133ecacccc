//! Long tool calls as MCP tasks (SEP-2663, `io.modelcontextprotocol/tasks`).
//!
//! A tool declared with [`Registry::add_long_running`](crate::tool::Registry::add_long_running)
//! may continue as a task when the client declared the tasks extension. The call still goes
//! through [`JarvisServer::dispatch`] — the same gate, tier, policy and audit as any call — and
//! starts in the request as usual. Only when the handler says its checks passed
//! ([`CallCtx::accepted`](crate::tool::CallCtx::accepted)) does the server hand the running call
//! to rmcp's [`TaskManager`] and answer with the task handle. A call that is refused, has bad
//! arguments or ends before that point answers with its ordinary result, so a refusal never
//! creates a task.
//!
//! While it runs as a task, progress messages become the task's `statusMessage`
//! (`tasks/get`), and `tasks/cancel` cancels the call's token exactly as a client's
//! `notifications/cancelled` would for an ordinary call; a call that stops because of it settles
//! as `cancelled`. Tasks live in memory: they do not survive a restart of the server (jobs that
//! must, like voice training, keep their own ids and status tools).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::ErrorData;
use rmcp::model::{CallToolResponse, CallToolResult, CreateTaskResult};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::task_manager::{TaskContext, TaskExit, TaskOptions};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::server::JarvisServer;
use crate::tool::CallCtx;

/// How long a task may run before the task manager fails it (and cancels the call); a finished
/// task stays readable for the same time again.
pub const TASK_TTL: Duration = Duration::from_secs(24 * 3600);
/// Suggested `tasks/get` polling interval.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// `_meta` key on a long-running tool's definition: it may continue as an MCP task.
pub const META_LONG_RUNNING: &str = "jarvis/long_running";

/// The link between a running call and the task it may become.
#[derive(Default)]
pub struct TaskLink {
    accepted: Mutex<Option<oneshot::Sender<String>>>,
    task: OnceLock<TaskContext>,
}

impl TaskLink {
    fn new() -> (Arc<Self>, oneshot::Receiver<String>) {
        let (tx, rx) = oneshot::channel();
        (Arc::new(Self { accepted: Mutex::new(Some(tx)), task: OnceLock::new() }), rx)
    }

    /// Signal that the call's checks passed; the first call wins.
    pub(crate) fn accept(&self, message: String) {
        let tx = match self.accepted.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = tx {
            let _ = tx.send(message);
        }
    }

    /// Once the call runs as a task: record a progress message as its status.
    /// Returns false while the call is still an ordinary request.
    pub(crate) fn status(&self, message: &str) -> bool {
        match self.task.get() {
            Some(t) => {
                t.set_status_message(message);
                true
            }
            None => false,
        }
    }
}

/// Whether this request may get a task handle for a call of `tool`.
pub(crate) fn wanted<S: Send + Sync + 'static>(
    server: &JarvisServer<S>,
    tool: &str,
    context: &RequestContext<RoleServer>,
) -> bool {
    server.registry.get(tool).is_some_and(|d| d.long_running)
        && context.client_capabilities().is_some_and(|c| c.supports_tasks())
}

/// Run a long-running tool call that may continue as a task (see the module docs).
pub(crate) async fn call<S: Send + Sync + 'static>(
    server: &JarvisServer<S>,
    name: String,
    args: Value,
    ctx: CallCtx,
    request_ct: CancellationToken,
) -> Result<CallToolResponse, ErrorData> {
    // The call's own token: cancelled by the request while it is one, by `tasks/cancel` after.
    let cancel = CancellationToken::new();
    let (link, accepted) = TaskLink::new();
    let ctx = ctx.with_task(link.clone(), cancel.clone());
    let srv = server.clone();
    let mut call = tokio::spawn(async move { srv.dispatch(&name, args, ctx).await });
    let mut accepted = accepted;
    let message = tokio::select! {
        r = &mut call => return Ok(joined(r).into()),
        m = &mut accepted => match m {
            Ok(m) => m,
            // The sender is gone only with the call itself.
            Err(_) => return Ok(joined(call.await).into()),
        },
        _ = request_ct.cancelled() => {
            cancel.cancel();
            return Ok(joined(call.await).into());
        }
    };
    let options = TaskOptions::new()
        .with_ttl_ms(TASK_TTL.as_millis() as u64)
        .with_poll_interval_ms(POLL_INTERVAL.as_millis() as u64)
        .with_status_message(message);
    let task = server.tasks.spawn(options, move |tctx| {
        let _ = link.task.set(tctx.clone());
        Box::pin(async move {
            let mut call = call;
            // Dropping this future (TTL expiry, shutdown) also cancels the call.
            let _stop = cancel.clone().drop_guard();
            let r = tokio::select! {
                r = &mut call => r,
                _ = tctx.cancelled() => {
                    cancel.cancel();
                    call.await
                }
            };
            let result = joined(r);
            if cancel.is_cancelled() && result.is_error == Some(true) {
                tracing::info!(task = tctx.task_id(), "task cancelled by the client");
                return Err(TaskExit::Cancelled);
            }
            Ok(result)
        })
    });
    tracing::info!(task = %task.task_id, "tool call continues as an MCP task");
    Ok(CallToolResponse::Task(CreateTaskResult::new(task)))
}

fn joined(r: Result<CallToolResult, tokio::task::JoinError>) -> CallToolResult {
    r.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a tool call panicked or was aborted");
        CallToolResult::error(vec![rmcp::model::ContentBlock::text(format!("the tool call failed: {e}"))])
    })
}
