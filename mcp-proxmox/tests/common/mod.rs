//! Shared pieces of mcp-proxmox's integration tests: an in-process `pve-sim` on loopback, the
//! mcp-proxmox configuration pointing at it (as a `Config` or a TOML file), and its `/_sim/`
//! admin API (call log, clock, faults).
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;

use mcp_common::tier::Tier;
use mcp_proxmox::config::Config;
use pve_sim::{Scenario, SimHandle, SimOptions};
use serde_json::{Value, json};

/// Privilege-separated token of the homelab scenario (PVEVMAdmin + PVEAuditor on `/`,
/// PVEDatastoreUser on `/storage`).
pub const TOKEN_ID: &str = "jarvis@pve!mcp";
pub const TOKEN_SECRET: &str = "5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10";
/// Read-only token (PVEAuditor).
pub const RO_TOKEN_ID: &str = "monitor@pve!ro";
pub const RO_TOKEN_SECRET: &str = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4";
pub const ROOT_USER: &str = "root@pam";
pub const ROOT_PASSWORD: &str = "jarvis-demo";

/// Start the homelab scenario in-process; `speed` simulated seconds pass per real second.
pub async fn start_sim(tls: bool, speed: f64) -> SimHandle {
    let scenario = Scenario::builtin("homelab").expect("homelab is built in").expect("homelab parses");
    let mut opts = SimOptions::new(scenario);
    opts.tls = tls;
    opts.speed = speed;
    pve_sim::start(opts).await.expect("starting pve-sim")
}

/// How mcp-proxmox logs in.
#[derive(Debug, Clone, Copy)]
pub enum Login {
    Token,
    ReadOnlyToken,
    Root,
}

/// The `[cluster]` section for `sim` as TOML lines (TLS settings excluded).
fn cluster_toml(sim: &SimHandle, login: Login) -> String {
    let auth = match login {
        Login::Token => format!("token_id = \"{TOKEN_ID}\"\ntoken_secret = \"{TOKEN_SECRET}\""),
        Login::ReadOnlyToken => format!("token_id = \"{RO_TOKEN_ID}\"\ntoken_secret = \"{RO_TOKEN_SECRET}\""),
        Login::Root => format!("username = \"{ROOT_USER}\"\npassword = \"{ROOT_PASSWORD}\""),
    };
    format!("[cluster]\nurl = \"{}\"\nallow_plain_http = {}\n{auth}\n", sim.origin(), !sim.tls)
}

/// A complete mcp-proxmox config file for `sim`: `max_tier`, login, task wait and poll.
pub fn config_toml(sim: &SimHandle, max_tier: Tier, login: Login, wait_secs: u64, extra: &str) -> String {
    format!(
        "[server]\nmax_tier = \"{max_tier}\"\n\n{}\n[tasks]\nwait_secs = {wait_secs}\npoll_ms = 100\n\n{extra}\n",
        cluster_toml(sim, login)
    )
}

pub fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The same configuration as a value, for tests that build the server in-process.
pub fn config(sim: &SimHandle, max_tier: Tier, login: Login) -> Config {
    let mut c = Config::default();
    c.server.max_tier = max_tier;
    c.cluster.url = sim.origin();
    c.cluster.allow_plain_http = !sim.tls;
    match login {
        Login::Token => {
            (c.cluster.token_id, c.cluster.token_secret) = (Some(TOKEN_ID.into()), Some(TOKEN_SECRET.into()))
        }
        Login::ReadOnlyToken => {
            (c.cluster.token_id, c.cluster.token_secret) = (Some(RO_TOKEN_ID.into()), Some(RO_TOKEN_SECRET.into()))
        }
        Login::Root => (c.cluster.username, c.cluster.password) = (Some(ROOT_USER.into()), Some(ROOT_PASSWORD.into())),
    }
    c.tasks.wait_secs = 10;
    c.tasks.poll_ms = 100;
    c
}

fn admin_url(sim: &SimHandle, path: &str) -> String {
    format!("http://{}/_sim/{path}", sim.addr)
}

fn http() -> reqwest::Client {
    mcp_proxmox::pve::tls::install_provider();
    reqwest::Client::builder().no_proxy().build().expect("reqwest client")
}

/// Call the simulator's admin API (plain-HTTP simulators only) and return its `data`.
pub async fn admin(sim: &SimHandle, method: reqwest::Method, path: &str, body: Value) -> Value {
    let resp = http()
        .request(method, admin_url(sim, path))
        .header("X-Sim-Admin-Token", &sim.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("admin call {path}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_else(|e| panic!("admin call {path}: body is not JSON: {e}"));
    assert!(status.is_success(), "admin call {path} answered {status}: {v}");
    v.get("data").cloned().unwrap_or(Value::Null)
}

/// Every API call that reached the simulator so far: `[{"method", "path", "status", "user", …}]`.
pub async fn sim_calls(sim: &SimHandle) -> Vec<Value> {
    match admin(sim, reqwest::Method::GET, "calls", json!({})).await {
        Value::Array(calls) => calls,
        other => panic!("GET /_sim/calls is not a list: {other}"),
    }
}

/// Calls that could change the cluster (anything but GET), as `METHOD path` lines.
pub fn writes(calls: &[Value]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c["method"].as_str() != Some("GET"))
        // A ticket login is a POST that changes nothing.
        .filter(|c| !c["path"].as_str().unwrap_or("").ends_with("/access/ticket"))
        .map(|c| format!("{} {}", c["method"].as_str().unwrap_or("?"), c["path"].as_str().unwrap_or("?")))
        .collect()
}
