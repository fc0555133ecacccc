//! How mcp-proxmox talks to Proxmox, checked against pve-sim: concurrent identical reads share
//! one upstream request, and HTTPS is verified by a pinned certificate fingerprint (insecure
//! mode only when asked for).

mod common;

use std::sync::Arc;

use common::Login;
use mcp_common::server::JarvisServer;
use mcp_common::tier::Tier;
use mcp_common::tool::CallCtx;
use mcp_proxmox::config::Config;
use mcp_proxmox::service::Pve;
use pve_sim::SimHandle;
use serde_json::{Value, json};

/// Call a tool through the gate; returns `(is_error, text)`.
async fn call(server: &JarvisServer<Pve>, tool: &str, args: Value) -> (bool, String) {
    let ctx = CallCtx::detached(Tier::Green, server.policy.clone());
    let r = serde_json::to_value(server.dispatch(tool, args, ctx).await).expect("a result serializes");
    let text = r["content"].as_array().into_iter().flatten().filter_map(|c| c["text"].as_str()).collect();
    (r["isError"] == json!(true), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_reads_make_one_proxmox_call() {
    let sim = common::start_sim(false, 1.0).await;
    // Slow answers keep the first request in flight while the other 49 arrive.
    common::admin(&sim, reqwest::Method::POST, "latency", json!({"ms": 300})).await;
    let server = Arc::new(mcp_proxmox::build(common::config(&sim, Tier::Green, Login::Token)).expect("build"));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let server = server.clone();
        set.spawn(async move { call(&server, "list_guests", json!({})).await });
    }
    let results = set.join_all().await;
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(|(is_error, text)| !is_error && text.starts_with("31 guests")), "{:?}", results[0]);
    assert!(results.windows(2).all(|w| w[0] == w[1]), "every caller gets the same answer");

    let calls = common::sim_calls(&sim).await;
    let resources: Vec<&Value> =
        calls.iter().filter(|c| c["path"].as_str().is_some_and(|p| p.contains("/cluster/resources"))).collect();
    assert_eq!(resources.len(), 1, "Proxmox saw {} /cluster/resources calls: {resources:?}", resources.len());
    assert_eq!(server.state.upstream_calls(), 1, "mcp-proxmox counted its own upstream calls");
}

fn tls_config(sim: &SimHandle, fingerprint: Option<String>, insecure: bool) -> Config {
    let mut config = common::config(sim, Tier::Green, Login::Token);
    config.cluster.fingerprint = fingerprint;
    config.cluster.insecure = insecure;
    config
}

/// The simulator's certificate fingerprint with its first byte changed.
fn wrong_fingerprint(sim: &SimHandle) -> String {
    let right = sim.fingerprint.clone().expect("an HTTPS simulator has a fingerprint");
    let first = if right.starts_with("00") { "11" } else { "00" };
    format!("{first}{}", &right[2..])
}

fn requests_seen(sim: &SimHandle) -> usize {
    sim.shared.lock().calls.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprint_lets_mcp_proxmox_talk_https() {
    let sim = common::start_sim(true, 1.0).await;
    assert!(sim.origin().starts_with("https://"));
    let server = mcp_proxmox::build(tls_config(&sim, sim.fingerprint.clone(), false)).expect("build");
    let (is_error, text) = call(&server, "list_nodes", json!({})).await;
    assert!(!is_error && text.starts_with("4 nodes"), "{text}");
    // Lower-case and without colons is the same pin.
    let plain = sim.fingerprint.clone().map(|f| f.replace(':', "").to_lowercase());
    let server = mcp_proxmox::build(tls_config(&sim, plain, false)).expect("build");
    assert!(!call(&server, "cluster_status", json!({})).await.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_fingerprint_is_refused_with_a_clear_error_even_when_insecure_is_set() {
    let sim = common::start_sim(true, 1.0).await;
    for insecure in [false, true] {
        let server = mcp_proxmox::build(tls_config(&sim, Some(wrong_fingerprint(&sim)), insecure)).expect("build");
        let (is_error, text) = call(&server, "list_nodes", json!({})).await;
        assert!(is_error, "a wrong pin must not connect (insecure = {insecure}): {text}");
        assert!(text.contains("does not match the pinned SHA-256 fingerprint"), "the error should say why: {text}");
    }
    assert_eq!(requests_seen(&sim), 0, "no request may pass a failed certificate check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_mode_is_used_only_when_set() {
    let sim = common::start_sim(true, 1.0).await;
    let server = mcp_proxmox::build(tls_config(&sim, None, false)).expect("build");
    let (is_error, text) = call(&server, "list_nodes", json!({})).await;
    assert!(is_error && text.contains("not trusted"), "a self-signed certificate must be refused by default: {text}");
    assert_eq!(requests_seen(&sim), 0);

    let server = mcp_proxmox::build(tls_config(&sim, None, true)).expect("build");
    let (is_error, text) = call(&server, "list_nodes", json!({})).await;
    assert!(!is_error && text.starts_with("4 nodes"), "insecure = true accepts any certificate: {text}");
}
