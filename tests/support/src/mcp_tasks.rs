//! MCP tasks (`io.modelcontextprotocol/tasks`) from the client side: an rmcp client that declares the
//! extension (or not), served a [`JarvisServer`] built in-process over an in-memory pipe, and a
//! `tasks/get` poller.

use std::time::{Duration, Instant};

use mcp_common::server::JarvisServer;
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, DetailedTask, GetTaskParams, Implementation,
};
use rmcp::service::{RoleClient, RunningService};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ClientConfig>;

/// A client configuration that declares the tasks extension when `tasks`.
pub fn client_config(tasks: bool) -> ClientConfig {
    let caps = if tasks { ClientCapabilities::builder().enable_tasks().build() } else { ClientCapabilities::default() };
    ClientConfig::new(caps, Implementation::new("tasks-test", "1"))
}

/// Serve `server` over an in-memory pipe and connect a client to it.
pub async fn connect<S: Send + Sync + 'static>(server: JarvisServer<S>, tasks: bool) -> Client {
    let (a, b) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(a).await {
            let _ = running.waiting().await;
        }
    });
    client_config(tasks).serve(b).await.expect("client connects")
}

/// `tools/call` parameters.
pub fn call(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(m) = args else { panic!("arguments are an object") };
    CallToolRequestParams::new(tool.to_string()).with_arguments(m)
}

/// Poll `tasks/get` until the task settles; returns the final task and every status message seen.
pub async fn poll(c: &Client, task: &str, secs: u64) -> (DetailedTask, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let got = c.peer().get_task(GetTaskParams::new(task.to_string())).await.expect("tasks/get");
        if let Some(m) = &got.task.task.status_message
            && seen.last() != Some(m)
        {
            seen.push(m.clone());
        }
        if got.task.status().is_terminal() {
            return (got.task, seen);
        }
        assert!(
            Instant::now() < deadline,
            "task {task} still {:?} after {secs} s; statuses {seen:?}",
            got.task.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
