//! The gate: tiers, max_tier, BLACK, protected resources, argument validation and the audit log.

use std::sync::Arc;

use mcp_common::audit;
use mcp_common::policy::{Policy, Target};
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use serde_json::{Value, json};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct GuestArgs {
    /// Guest id.
    vmid: u32,
}

#[derive(Default)]
struct Counter(std::sync::atomic::AtomicUsize);

fn spec(name: &'static str, tier: Tier) -> ToolSpec {
    ToolSpec {
        name,
        title: name,
        description: "A tool used by the gate tests.",
        tier,
        idempotent: false,
        open_world: false,
    }
}

fn registry() -> Registry<Counter> {
    let mut r = Registry::new();
    for (name, tier) in [
        ("read_guest", Tier::Green),
        ("start_guest", Tier::Yellow),
        ("stop_guest", Tier::Red),
        ("reboot_node", Tier::Black),
    ] {
        r.add(spec(name, tier), |s: Arc<Counter>, a: GuestArgs, ctx: CallCtx| async move {
            ctx.guard(&Target { vmid: Some(a.vmid), ..Default::default() })?;
            s.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ToolError>(ToolOutput::new(format!("did it to {}", a.vmid), json!({"vmid": a.vmid})))
        });
    }
    r
}

fn server(max_tier: Tier, audit_path: Option<&std::path::Path>) -> JarvisServer<Counter> {
    let policy: Policy = toml::from_str("[protect]\nvmids = [100]\n[tiers]\nstart_guest = 'red'").expect("policy");
    JarvisServer {
        name: "test",
        version: "0",
        instructions: String::new(),
        state: Arc::new(Counter::default()),
        registry: Arc::new(registry()),
        policy: Arc::new(policy),
        max_tier,
        audit: audit_path.map(|p| Arc::new(audit::AuditLog::open(p, "test").expect("audit"))),
        resources: None,
        subscriptions: Default::default(),
        tasks: Default::default(),
        metrics: None,
    }
}

async fn call(s: &JarvisServer<Counter>, tool: &str, args: Value) -> (bool, Value) {
    let ctx = CallCtx::detached(Tier::Green, s.policy.clone());
    let r = s.dispatch(tool, args, ctx).await;
    (r.is_error == Some(true), r.structured_content.unwrap_or(Value::Null))
}

fn calls(s: &JarvisServer<Counter>) -> usize {
    s.state.0.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn every_declared_tool_publishes_annotations_that_match_its_tier() {
    registry().check().expect("declarations are consistent");
}

#[tokio::test]
async fn green_server_refuses_every_write_before_the_handler_runs() {
    let s = server(Tier::Green, None);
    assert!(!call(&s, "read_guest", json!({"vmid": 101})).await.0);
    let (err, v) = call(&s, "stop_guest", json!({"vmid": 101})).await;
    assert!(err);
    assert_eq!(v["rule"], "max_tier");
    assert_eq!(calls(&s), 1, "only the green call reached the handler");
}

#[tokio::test]
async fn policy_raised_tier_applies_to_the_gate() {
    let s = server(Tier::Yellow, None);
    let (err, v) = call(&s, "start_guest", json!({"vmid": 101})).await;
    assert!(err, "start_guest was raised to red by the policy");
    assert_eq!(v["rule"], "max_tier");
}

#[tokio::test]
async fn black_tools_never_run_even_with_max_tier_red() {
    let s = server(Tier::Red, None);
    let (err, v) = call(&s, "reboot_node", json!({"vmid": 101})).await;
    assert!(err);
    assert_eq!(v["rule"], "black_tier");
    assert_eq!(calls(&s), 0);
}

#[tokio::test]
async fn protected_guest_is_refused_above_green_but_readable() {
    let s = server(Tier::Red, None);
    assert!(!call(&s, "read_guest", json!({"vmid": 100})).await.0);
    let (err, v) = call(&s, "stop_guest", json!({"vmid": 100})).await;
    assert!(err);
    assert_eq!(v["rule"], "protected_vmid");
    assert_eq!(calls(&s), 1);
}

#[tokio::test]
async fn bad_arguments_are_a_clear_tool_error() {
    let s = server(Tier::Red, None);
    let (err, v) = call(&s, "read_guest", json!({"vmid": "abc"})).await;
    assert!(err);
    assert_eq!(v["error"], "invalid_arguments");
    let (err, v) = call(&s, "no_such_tool", json!({})).await;
    assert!(err);
    assert_eq!(v["rule"], "unknown_tool");
}

#[tokio::test]
async fn non_green_calls_and_refusals_are_audited_in_a_valid_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let s = server(Tier::Red, Some(&path));
    call(&s, "read_guest", json!({"vmid": 101})).await;
    call(&s, "stop_guest", json!({"vmid": 101})).await;
    call(&s, "stop_guest", json!({"vmid": 100})).await;
    call(&s, "reboot_node", json!({"vmid": 101})).await;
    assert_eq!(audit::verify(&path).expect("intact"), 3, "green reads are not audited");
    let text = std::fs::read_to_string(&path).expect("read");
    let entries: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(entries[0]["outcome"], "ok");
    assert_eq!(entries[1]["rule"], "protected_vmid");
    assert_eq!(entries[2]["rule"], "black_tier");
}
