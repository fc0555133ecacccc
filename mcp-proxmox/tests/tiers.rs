//! Tier enforcement, proven at the Proxmox end: whatever the gate refuses must not reach the
//! cluster, so every test reads the simulator's call log (`GET /_sim/calls`) and finds no write.
//! The server is built in-process (`mcp_proxmox::build`) with the same `[server]` settings the
//! `--max-tier`, `--policy` and `--audit-log` flags set, and every call goes through
//! `JarvisServer::dispatch`, the path every MCP `tools/call` takes.

mod common;

use std::path::Path;
use std::process::Command;

use common::Login;
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_common::tool::{CallCtx, ToolDef};
use mcp_proxmox::service::Pve;
use pve_sim::SimHandle;
use serde_json::{Map, Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_mcp-proxmox");

/// Arguments that would be valid for `def` on guest `vmid`: every required property filled in.
fn args_for(def: &ToolDef<Pve>, vmid: u32) -> Value {
    let props = def.input_schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    let required: Vec<&str> = def
        .input_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut args = Map::new();
    for name in required {
        let value = match name {
            "vmid" => json!(vmid),
            "node" => json!("pve1"),
            "target" => json!("pve2"),
            "name" => json!("pre-upgrade"),
            other => match props.get(other).and_then(|p| p.get("type")) {
                Some(Value::String(t)) if t == "integer" || t == "number" => json!(1),
                Some(Value::String(t)) if t == "boolean" => json!(false),
                Some(Value::String(t)) if t == "array" => json!(["uptime"]),
                _ => json!("uptime"),
            },
        };
        args.insert(name.to_string(), value);
    }
    Value::Object(args)
}

/// Call a tool through the gate; returns `(is_error, structuredContent, text)`.
async fn call(server: &JarvisServer<Pve>, tool: &str, args: Value) -> (bool, Value, String) {
    let ctx = CallCtx::detached(Tier::Green, server.policy.clone());
    let r = serde_json::to_value(server.dispatch(tool, args, ctx).await).expect("a result serializes");
    let text = r["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect();
    (r["isError"] == json!(true), r["structuredContent"].clone(), text)
}

fn build(sim: &SimHandle, max_tier: Tier, policy: Option<&Path>, audit: Option<&Path>) -> JarvisServer<Pve> {
    let mut config = common::config(sim, max_tier, Login::Token);
    config.server.policy = policy.map(Path::to_path_buf);
    config.server.audit_log = audit.map(Path::to_path_buf);
    mcp_proxmox::build(config).expect("building the server")
}

async fn assert_no_writes(sim: &SimHandle) {
    let writes = common::writes(&common::sim_calls(sim).await);
    assert!(writes.is_empty(), "refused calls reached Proxmox: {writes:?}");
}

fn verify(path: &Path) -> std::process::Output {
    Command::new(SERVER).arg("verify").arg(path).output().expect("running mcp-proxmox verify")
}

fn audit_entries(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("reading the audit log");
    text.lines().map(|l| serde_json::from_str(l).expect("an audit line is JSON")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_server_refuses_every_other_tool_sends_no_write_and_audits_verifiably() {
    let sim = common::start_sim(false, 1.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let audit = dir.path().join("audit.jsonl");
    let server = build(&sim, Tier::Green, None, Some(&audit));
    let others: Vec<&ToolDef<Pve>> = server.registry.iter().filter(|d| d.spec.tier > Tier::Green).collect();
    assert!(others.len() >= 14, "expected every write tool in the registry, found {}", others.len());
    for def in &others {
        let (is_error, sc, text) = call(&server, def.spec.name, args_for(def, 104)).await;
        let want = if def.spec.tier == Tier::Black { "black_tier" } else { "max_tier" };
        assert!(is_error && sc["error"] == "refused" && sc["rule"] == want, "{}: {text} {sc}", def.spec.name);
    }
    assert_no_writes(&sim).await;

    let entries = audit_entries(&audit);
    assert_eq!(entries.len(), others.len(), "one audit entry per refusal");
    for (e, def) in entries.iter().zip(&others) {
        assert_eq!((e["tool"].as_str(), e["decision"].as_str()), (Some(def.spec.name), Some("refused")), "{e}");
    }
    let ok = verify(&audit);
    assert!(ok.status.success(), "verify failed on an intact log: {}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("{} entries", others.len())));

    let tampered = dir.path().join("tampered.jsonl");
    let text = std::fs::read_to_string(&audit).expect("reading the audit log");
    let second = text.lines().nth(1).expect("a second entry");
    let forged = second.replacen("\"decision\":\"refused\"", "\"decision\":\"allowed\"", 1);
    assert_ne!(forged, second, "the forgery must change the entry");
    std::fs::write(&tampered, text.replacen(second, &forged, 1)).expect("writing the tampered copy");
    let bad = verify(&tampered);
    assert!(!bad.status.success(), "verify accepted a tampered log");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 2"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_vm_is_refused_for_every_write_tool_at_every_tier() {
    // A fast clock: the control call at the end starts a VM and waits for its task.
    let sim = common::start_sim(false, 40.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rules =
        [("[protect]\nvmids = [100]\n", "protected_vmid"), ("[protect]\ntags = [\"protected\"]\n", "protected_tag")];
    for (i, (policy_text, rule)) in rules.iter().enumerate() {
        let policy = dir.path().join(format!("policy-{i}.toml"));
        common::write_config(&policy, policy_text);
        for max_tier in [Tier::Yellow, Tier::Red] {
            let audit = dir.path().join(format!("audit-{i}-{max_tier}.jsonl"));
            let server = build(&sim, max_tier, Some(&policy), Some(&audit));
            let guest_writes: Vec<&ToolDef<Pve>> = server
                .registry
                .iter()
                .filter(|d| d.spec.tier > Tier::Green && d.spec.tier < Tier::Black)
                .filter(|d| d.input_schema.get("properties").and_then(|p| p.get("vmid")).is_some())
                .collect();
            assert!(guest_writes.len() >= 11, "expected every guest write tool, found {}", guest_writes.len());
            for def in guest_writes {
                let (is_error, sc, text) = call(&server, def.spec.name, args_for(def, 100)).await;
                let want = if def.spec.tier <= max_tier { *rule } else { "max_tier" };
                assert!(
                    is_error && sc["error"] == "refused" && sc["rule"] == want,
                    "{} on VM 100 at max_tier {max_tier}: {text} {sc}",
                    def.spec.name
                );
            }
            assert!(audit_entries(&audit).iter().all(|e| e["decision"] == "refused"));
            assert!(verify(&audit).status.success());
        }
    }
    assert_no_writes(&sim).await;

    // Control: the same policy lets the same call through on an unprotected guest.
    let policy = dir.path().join("policy-0.toml");
    let server = build(&sim, Tier::Yellow, Some(&policy), None);
    let (is_error, _, text) = call(&server, "start_guest", json!({"vmid": 104})).await;
    assert!(!is_error, "start_guest on unprotected VM 104: {text}");
    let writes = common::writes(&common::sim_calls(&sim).await);
    assert!(writes.iter().any(|w| w.starts_with("POST") && w.ends_with("/qemu/104/status/start")), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_tools_are_refused_even_at_max_tier_red() {
    let sim = common::start_sim(false, 1.0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.toml");
    common::write_config(&policy, "[tiers]\nmigrate_guest = \"black\"\n");
    let audit = dir.path().join("audit.jsonl");
    let server = build(&sim, Tier::Red, Some(&policy), Some(&audit));
    let calls = [
        ("reboot_node", json!({"node": "pve1"})),
        ("shutdown_node", json!({"node": "pve2"})),
        ("migrate_guest", json!({"vmid": 104, "target": "pve2"})),
    ];
    for (tool, args) in calls {
        let (is_error, sc, text) = call(&server, tool, args).await;
        assert!(is_error && sc["rule"] == "black_tier", "{tool}: {text} {sc}");
        assert!(text.contains("never runs"), "{tool}: the refusal should explain itself: {text}");
    }
    assert_no_writes(&sim).await;
    let entries = audit_entries(&audit);
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e["rule"] == "black_tier" && e["tier"] == "black"), "{entries:?}");
    assert!(verify(&audit).status.success());
}
