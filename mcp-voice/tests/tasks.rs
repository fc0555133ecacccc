//! MCP tasks (`io.modelcontextprotocol/tasks`, SEP-2663) with an rmcp client: a client that
//! declares the extension gets a task handle for training while the job still runs, follows it
//! with `tasks/get` to the end, and cancels another with `tasks/cancel` (the job ends cancelled);
//! a refused call (tier above max_tier, protected node) is answered at once and creates no task;
//! a client without the extension gets the ordinary result. Over an in-memory pipe and over
//! streamable HTTP, with the trainer stand-in.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Lab;
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_voice::state::Voice;
use rmcp::ServiceExt;
use rmcp::model::{CallToolResponse, CallToolResult, CancelTaskParams, GetTaskParams, TaskPayload, TaskStatus};
use rmcp::task_manager::TaskManager;
use serde_json::{Value, json};
use test_support::mcp_tasks::{Client, call, client_config, connect, poll};
use tokio_util::sync::CancellationToken;

fn dataset(lab: &Lab) -> PathBuf {
    let d = lab.work.join("dataset");
    std::fs::create_dir_all(d.join("wavs")).expect("mkdir");
    let mut meta = String::new();
    for i in 0..3 {
        std::fs::write(d.join(format!("wavs/c{i}.wav")), test_support::xtts::tone_wav(2.0, 300.0, 22050)).expect("wav");
        meta.push_str(&format!("c{i}|Line {i}.|Line {i}.\n"));
    }
    std::fs::write(d.join("metadata.csv"), meta).expect("metadata");
    d
}

/// The voice server with the stand-in trainer taking `step_secs` per step.
fn server(lab: &Lab, step_secs: &str, max_tier: Tier) -> JarvisServer<Voice> {
    let mut cfg = lab.config();
    cfg.server.max_tier = max_tier;
    cfg.server.audit_log = Some(lab.base.join("audit.jsonl"));
    cfg.trainer.env.insert("STANDIN_STEP_SECS".into(), step_secs.into());
    mcp_voice::build_with(Arc::new(Voice::new(cfg).expect("state"))).expect("server")
}

/// Serve over streamable HTTP on a loopback port.
async fn connect_http(server: JarvisServer<Voice>, stop: &CancellationToken) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
    let stop = stop.clone();
    tokio::spawn(async move {
        let cfg = mcp_common::config::ServerSection::default();
        let _ = mcp_common::server::serve_http(server, &cfg, None, listener, stop).await;
    });
    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url);
    client_config(true).serve(transport).await.expect("client connects over HTTP")
}

async fn job_status(c: &Client, job: &str) -> Value {
    let r = c.call_tool(call("voice_job_status", json!({"job": job}))).await.expect("voice_job_status");
    assert_ne!(r.is_error, Some(true), "{r:?}");
    r.structured_content.expect("structured")["job"].clone()
}

/// The job id in a status message or text (`vj-` and 12 hex digits).
fn job_id(text: &str) -> Option<String> {
    let at = text.find("vj-")?;
    let id: String = text[at..].chars().take(15).collect();
    (id.len() == 15 && id[3..].chars().all(|c| c.is_ascii_hexdigit())).then_some(id)
}

/// A training call as a task: the handle comes while the job runs, `tasks/get` follows it to its
/// end, and the job stays readable through `voice_job_status`.
async fn train_as_task(c: &Client, lab: &Lab) {
    let ds = dataset(lab);
    let started = Instant::now();
    let r = c.call_tool_once(call("retrain_voice_model", json!({"dataset": ds, "epochs": 2}))).await.expect("call");
    let CallToolResponse::Task(created) = r else { panic!("expected a task handle, got {r:?}") };
    assert_eq!(created.task.status, TaskStatus::Working);
    let first = created.task.status_message.clone().unwrap_or_default();
    let job = job_id(&first).unwrap_or_else(|| panic!("the first status names the job: {first:?}"));
    assert_eq!(job_status(c, &job).await["state"], "running", "the handle came before the job ended");
    assert!(started.elapsed() < Duration::from_secs(20), "the handle came at once");

    let (done, seen) = poll(c, &created.task.task_id, 90).await;
    let TaskPayload::Completed { result } = done.payload else { panic!("expected completed, got {done:?}") };
    let result: CallToolResult = serde_json::from_value(Value::Object(result)).expect("a CallToolResult");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let s = result.structured_content.expect("structured");
    assert_eq!(s["id"], job.as_str(), "{s}");
    assert_eq!(s["state"], "succeeded", "{s}");
    assert!(seen.iter().any(|m| m.starts_with(&job) && m.contains("epoch")), "progress became statuses: {seen:?}");
    assert_eq!(job_status(c, &job).await["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_client_gets_a_handle_for_training_and_follows_it_with_tasks_get() {
    let lab = Lab::new();
    let srv = server(&lab, "0.4", Tier::Red);
    let caps = rmcp::handler::server::ServerHandler::get_info(&srv).capabilities;
    assert!(caps.supports_tasks(), "the server advertises the tasks extension");
    let c = connect(srv, true).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    let long: Vec<&str> = tools
        .iter()
        .filter(|t| t.meta.as_ref().is_some_and(|m| m.0.get("jarvis/long_running") == Some(&json!(true))))
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(long, ["extract_voice_audio", "prepare_voice_dataset", "retrain_voice_model"]);
    train_as_task(&c, &lab).await;
    // A short tool is an ordinary call even for a task client.
    let r = c.call_tool_once(call("list_voice_models", json!({}))).await.expect("call");
    assert!(matches!(r, CallToolResponse::Complete(_)), "{r:?}");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_cancel_cancels_the_training_job() {
    let lab = Lab::new();
    let ds = dataset(&lab);
    let c = connect(server(&lab, "0.5", Tier::Red), true).await;
    let r = c.call_tool_once(call("retrain_voice_model", json!({"dataset": ds, "epochs": 50}))).await.expect("call");
    let CallToolResponse::Task(created) = r else { panic!("expected a task handle, got {r:?}") };
    let job = job_id(created.task.status_message.as_deref().unwrap_or_default()).expect("job id in the status");
    let deadline = Instant::now() + Duration::from_secs(30);
    while job_status(&c, &job).await["progress"]["global_step"].as_u64().is_none() {
        assert!(Instant::now() < deadline, "the trainer never reported a step");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.peer().cancel_task(CancelTaskParams::new(created.task.task_id.clone())).await.expect("tasks/cancel");
    let (done, _) = poll(&c, &created.task.task_id, 30).await;
    assert_eq!(done.status(), TaskStatus::Cancelled, "{done:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let j = job_status(&c, &job).await;
        if j["state"] == "cancelled" {
            assert!(j["model"].is_null(), "{j}");
            break;
        }
        assert!(Instant::now() < deadline, "the job did not end cancelled: {j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(lab.base.join("audit.jsonl")).expect("audit log");
    assert!(log.contains("retrain_voice_model") && log.contains("cancelled by the client"), "audited: {log}");
    let _ = c.cancel().await;
}

/// Answered at once with a refusal: no task handle, no task in the manager.
async fn refused_without_a_task(c: &Client, tasks: &TaskManager, args: Value, rule: &str) {
    let r = c.call_tool_once(call("retrain_voice_model", args)).await.expect("call");
    let CallToolResponse::Complete(r) = r else { panic!("a refused call must not become a task: {r:?}") };
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let s = r.structured_content.expect("structured");
    assert_eq!(s["rule"], rule, "{s}");
    assert_eq!(tasks.running_task_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_are_answered_at_once_and_create_no_task() {
    let lab = Lab::new();
    let ds = dataset(&lab);
    // Above max_tier: the gate refuses before the handler runs.
    let green = server(&lab, "0.05", Tier::Green);
    let tasks = green.tasks.clone();
    let c = connect(green, true).await;
    refused_without_a_task(&c, &tasks, json!({"dataset": ds, "epochs": 1}), "max_tier").await;
    let _ = c.cancel().await;
    // A protected node: the handler refuses before the job starts.
    let mut srv = server(&lab, "0.05", Tier::Red);
    let node = srv.state.local.node().to_string();
    let policy: mcp_common::policy::Policy = toml::from_str(&format!("[protect]\nnodes = [{node:?}]")).expect("policy");
    srv.policy = Arc::new(policy);
    let tasks = srv.tasks.clone();
    let c = connect(srv, true).await;
    refused_without_a_task(&c, &tasks, json!({"dataset": ds, "epochs": 1}), "protected_node").await;
    // Bad arguments are the ordinary answer too.
    let r = c.call_tool_once(call("retrain_voice_model", json!({"dataset": ds, "epochs": 0}))).await.expect("call");
    assert!(matches!(&r, CallToolResponse::Complete(x) if x.is_error == Some(true)), "{r:?}");
    assert_eq!(tasks.running_task_count(), 0);
    assert!(lab.work.join("models").read_dir().map(|mut d| d.next().is_none()).unwrap_or(true), "no job started");
    let log = std::fs::read_to_string(lab.base.join("audit.jsonl")).expect("audit log");
    assert!(log.contains("\"max_tier\"") && log.contains("\"protected_node\""), "refusals are audited: {log}");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_extension_gets_the_ordinary_result() {
    let lab = Lab::new();
    let ds = dataset(&lab);
    let c = connect(server(&lab, "0.2", Tier::Red), false).await;
    let r = c.call_tool_once(call("retrain_voice_model", json!({"dataset": ds, "epochs": 2}))).await.expect("call");
    let CallToolResponse::Complete(r) = r else { panic!("expected the ordinary result, got {r:?}") };
    let text = r.content.first().and_then(|b| b.as_text()).map(|t| t.text.clone()).unwrap_or_default();
    assert!(text.starts_with("Training job vj-") && text.contains("started"), "{text}");
    let job = job_id(&text).expect("job id");
    assert_eq!(r.structured_content.expect("structured")["state"], "running");
    let err = c.peer().get_task(GetTaskParams::new("whatever".to_string())).await;
    assert!(err.is_err(), "tasks/get needs the extension: {err:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while job_status(&c, &job).await["state"] == "running" {
        assert!(Instant::now() < deadline, "job {job} did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job_status(&c, &job).await["state"], "succeeded");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_runs_as_a_task_over_streamable_http() {
    let lab = Lab::new();
    let stop = CancellationToken::new();
    let c = connect_http(server(&lab, "0.4", Tier::Red), &stop).await;
    train_as_task(&c, &lab).await;
    let _ = c.cancel().await;
    stop.cancel();
}
