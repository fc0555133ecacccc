//! Benchmark of mcp-proxmox's Proxmox call budget and latency (prints figures; no assertions).
//!
//! `cargo bench -p mcp-proxmox --bench upstream` (window: `BENCH_WINDOW_SECS`, default 30):
//! 1. upstream Proxmox calls per minute with 1 and with 50 clients subscribed to
//!    `pve://cluster/snapshot` (target: flat, ≤ 15/min), counted by the simulator's call log;
//! 2. latency of a cached `list_guests` over stdio (p50 / p99 of `BENCH_CALLS`, default 500);
//! 3. resident memory of the stdio server process.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::handler::client::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
    ResourceUpdatedNotificationParam, SubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RoleClient};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};

const URI: &str = "pve://cluster/snapshot";

#[derive(Clone)]
struct Watcher {
    updates: Arc<AtomicU64>,
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        let mut c = ClientConfig::new(ClientCapabilities::default(), Implementation::new("bench", "0"));
        c.protocol_version = ProtocolVersion::V_2025_11_25;
        c
    }

    async fn on_resource_updated(&self, _p: ResourceUpdatedNotificationParam, _c: NotificationContext<RoleClient>) {
        self.updates.fetch_add(1, Ordering::Relaxed);
    }
}

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

async fn calls(admin: &reqwest::Client, origin: &str, token: &str) -> usize {
    let v: serde_json::Value =
        match admin.get(format!("{origin}/_sim/calls")).header("X-Sim-Admin-Token", token).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return 0,
        };
    v["data"].as_array().map(Vec::len).unwrap_or(0)
}

async fn clear(admin: &reqwest::Client, origin: &str, token: &str) {
    let _ = admin.delete(format!("{origin}/_sim/calls")).header("X-Sim-Admin-Token", token).send().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18_765)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mcp_proxmox::pve::tls::install_provider();
    let window = Duration::from_secs(env_u64("BENCH_WINDOW_SECS", 30));
    let n_calls = env_u64("BENCH_CALLS", 500) as usize;
    let scenario = pve_sim::Scenario::builtin("homelab").expect("homelab is built in")?;
    let mut opts = pve_sim::SimOptions::new(scenario);
    opts.tls = false;
    let sim = pve_sim::start(opts).await?;
    let origin = sim.origin();
    let dir = tempfile::tempdir()?;
    let cfg = dir.path().join("mcp-proxmox.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cluster]\nname = \"homelab\"\nurl = \"{origin}\"\nallow_plain_http = true\ntoken_id = \"jarvis@pve!mcp\"\n\
             token_secret = \"5f0c7a1e-2d4b-4c8e-9a61-0b9d3c2e7f10\"\n"
        ),
    )?;
    let bin = env!("CARGO_BIN_EXE_mcp-proxmox");
    let admin = reqwest::Client::new();

    // 1. Snapshot subscribers over streamable HTTP.
    let port = free_port();
    let mut http = tokio::process::Command::new(bin)
        .args(["--config", cfg.to_str().unwrap_or_default(), "--transport", "http", "--port", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/mcp");
    for _ in 0..100 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut clients = Vec::new();
    println!("upstream Proxmox calls per minute (window {}s):", window.as_secs());
    for n in [1usize, 50] {
        let updates = Arc::new(AtomicU64::new(0));
        while clients.len() < n {
            let w = Watcher { updates: updates.clone() };
            let c = w.serve(StreamableHttpClientTransport::from_uri(url.as_str())).await?;
            #[allow(deprecated)]
            c.subscribe(SubscribeRequestParams::new(URI)).await?;
            clients.push(c);
        }
        clear(&admin, &origin, &sim.admin_token).await;
        tokio::time::sleep(window).await;
        let count = calls(&admin, &origin, &sim.admin_token).await;
        let per_min = count as f64 * 60.0 / window.as_secs_f64();
        println!(
            "  {n:>2} subscriber(s): {count} calls in {}s = {per_min:.1}/min; {} update notifications delivered",
            window.as_secs(),
            updates.load(Ordering::Relaxed)
        );
    }
    for c in clients {
        let _ = c.cancel().await;
    }
    let _ = http.kill().await;

    // 2. Latency of a cached read over stdio.
    let child = TokioChildProcess::new(tokio::process::Command::new(bin).configure(|c| {
        c.args(["--config", cfg.to_str().unwrap_or_default()]).env("RUST_LOG", "warn");
    }))?;
    let pid = child.id();
    let client = Watcher { updates: Arc::new(AtomicU64::new(0)) }.serve(child).await?;
    client.call_tool(CallToolRequestParams::new("list_guests")).await?;
    let mut lat = Vec::with_capacity(n_calls);
    for _ in 0..n_calls {
        let t = Instant::now();
        client.call_tool(CallToolRequestParams::new("list_guests")).await?;
        lat.push(t.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!("list_guests over stdio, {n_calls} calls: p50 {:?}, p99 {:?}, max {:?}", p(0.5), p(0.99), p(1.0));
    if let Some(rss) = pid.and_then(rss_kib) {
        println!("mcp-proxmox resident memory after the run: {:.1} MiB", rss as f64 / 1024.0);
    }
    let _ = client.cancel().await;
    Ok(())
}
