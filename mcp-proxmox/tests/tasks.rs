//! Long Proxmox operations as MCP tasks (`io.modelcontextprotocol/tasks`): `backup_guest` and
//! `migrate_guest` are long-running tools. A client that declares the extension gets a task handle as
//! soon as Proxmox accepted the job (the UPID is in the first status), `tasks/get` follows the Proxmox
//! task to its end (past `tasks.wait_secs`, which only bounds ordinary calls), and `tasks/cancel` stops
//! the following (the Proxmox task itself goes on, as after a cancelled ordinary call). A refused call
//! answers at once and creates no task; a client without the extension gets the ordinary answer — the
//! UPID to poll once the wait is over. In-process server, pve-sim, an rmcp client over a pipe.

mod common;

use std::time::{Duration, Instant};

use common::Login;
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_proxmox::service::Pve;
use pve_sim::SimHandle;
use rmcp::model::{CallToolResponse, CallToolResult, CancelTaskParams, TaskPayload, TaskStatus};
use serde_json::{Value, json};
use test_support::mcp_tasks::{Client, call, connect, poll};

/// Simulated seconds per real second: slow enough that a backup outlives the 1 s wait.
const SPEED: f64 = 8.0;

fn server(sim: &SimHandle, max_tier: Tier) -> JarvisServer<Pve> {
    let mut config = common::config(sim, max_tier, Login::Token);
    config.tasks.wait_secs = 1;
    mcp_proxmox::build(config).expect("building the server")
}

fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

async fn task_handle(c: &Client, tool: &str, args: Value) -> rmcp::model::CreateTaskResult {
    let started = Instant::now();
    let r = c.call_tool_once(call(tool, args)).await.expect("tools/call");
    let CallToolResponse::Task(created) = r else { panic!("expected a task handle for {tool}, got {r:?}") };
    assert!(started.elapsed() < Duration::from_secs(5), "the handle came at once");
    assert_eq!(created.task.status, TaskStatus::Working);
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_runs_as_a_task_to_its_end_past_the_wait() {
    let sim = common::start_sim(false, SPEED).await;
    // Without the extension: after the 1 s wait the answer is the UPID to poll.
    let plain = connect(server(&sim, Tier::Red), false).await;
    let r = plain.call_tool(call("backup_guest", json!({"vmid": 101}))).await.expect("backup");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    let s = r.structured_content.clone().expect("structured");
    assert_eq!(s["task"]["finished"], false, "the backup outlives the ordinary wait: {s}");
    let _ = plain.cancel().await;

    let c = connect(server(&sim, Tier::Red), true).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    let long: Vec<&str> = tools
        .iter()
        .filter(|t| t.meta.as_ref().is_some_and(|m| m.get(mcp_common::tasks::META_LONG_RUNNING).is_some()))
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(long, ["backup_guest", "migrate_guest"]);
    let created = task_handle(&c, "backup_guest", json!({"vmid": 103})).await;
    let first = created.task.status_message.clone().unwrap_or_default();
    assert!(first.contains("UPID:") && first.contains("vzdump"), "the first status names the Proxmox task: {first}");
    let (done, seen) = poll(&c, &created.task.task_id, 120).await;
    let TaskPayload::Completed { result } = done.payload else { panic!("expected completed, got {done:?}") };
    let result: CallToolResult = serde_json::from_value(Value::Object(result)).expect("a CallToolResult");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let s = result.structured_content.clone().expect("structured");
    assert_eq!((s["task"]["finished"].clone(), s["task"]["succeeded"].clone()), (json!(true), json!(true)), "{s}");
    assert!(text(&result).contains("backup VM 103"), "{}", text(&result));
    assert!(seen.iter().any(|m| m.contains("INFO:")), "the task log showed as status: {seen:?}");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_cancel_stops_following_a_migration_and_refusals_create_no_task() {
    let sim = common::start_sim(false, SPEED / 4.0).await;
    // Above max_tier (migrate is RED): refused at once, the ordinary way.
    let yellow = connect(server(&sim, Tier::Yellow), true).await;
    let r = yellow.call_tool_once(call("migrate_guest", json!({"vmid": 101, "target": "pve2"}))).await.expect("call");
    let CallToolResponse::Complete(r) = r else { panic!("a refusal is no task: {r:?}") };
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let _ = yellow.cancel().await;
    assert!(common::writes(&common::sim_calls(&sim).await).is_empty(), "nothing reached Proxmox");

    let c = connect(server(&sim, Tier::Red), true).await;
    let created = task_handle(&c, "migrate_guest", json!({"vmid": 101, "target": "pve2"})).await;
    c.peer().cancel_task(CancelTaskParams::new(created.task.task_id.clone())).await.expect("tasks/cancel");
    let (done, _) = poll(&c, &created.task.task_id, 30).await;
    assert_eq!(done.status(), TaskStatus::Cancelled, "{done:?}");
    let _ = c.cancel().await;
}
