//! The Jarvis agent host (`jarvis` binary).
//!
//! - [`mcp`]: connects to the MCP servers, merges their tools with their tiers, restarts dead ones.
//! - [`llm`]: one provider trait; Anthropic Messages API and OpenAI-compatible adapters.
//! - [`gate`]: the safety gate and one-shot, hash-bound human approvals.
//! - [`agent`]: the loop (stream, gate, call tools, feed results back).
//! - [`store`]: SQLite (sessions, messages, events, approvals, settings).
//! - [`api`]: login, `/ws`, REST, health, metrics, the dashboard.
//! - [`rrd`]: `GET /api/rrd`, RRD history for the dashboard charts (via GREEN MCP tools).
//! - [`demo`]: the simulated cluster + MCP servers + agent host in one command.

pub mod agent;
pub mod api;
pub mod config;
pub mod demo;
pub mod gate;
pub mod llm;
pub mod mcp;
pub mod rrd;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, McpServerConfig};

/// The four Jarvis MCP servers, spawned over stdio from the directory of this executable,
/// with `--max-tier red` (the agent host's own gate decides what needs a human).
pub fn default_servers() -> Vec<McpServerConfig> {
    let dir = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)).unwrap_or_default();
    ["mcp-proxmox", "mcp-files", "mcp-projects", "mcp-voice"]
        .iter()
        .filter(|n| dir.join(n).exists())
        .map(|n| McpServerConfig {
            name: n.trim_start_matches("mcp-").to_string(),
            command: Some(dir.join(n).display().to_string()),
            args: vec!["--max-tier".into(), "red".into()],
            env: [("RUST_LOG".to_string(), std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))].into(),
            ..Default::default()
        })
        .collect()
}

/// The cluster snapshot resource every dashboard shows.
pub const SNAPSHOT_URI: &str = "pve://cluster/snapshot";

/// Keep the latest cluster snapshot: read it at start, whenever the MCP server reports a change,
/// and every 15 s as a fallback (e.g. after the server restarted).
async fn cluster_feed(
    mcp: Arc<mcp::McpManager>,
    tx: tokio::sync::watch::Sender<Option<Arc<serde_json::Value>>>,
    stop: CancellationToken,
) {
    let mut updates = mcp.resource_updates();
    loop {
        match mcp.read_resource(SNAPSHOT_URI).await {
            Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => {
                    tx.send_if_modified(|cur| {
                        let changed = cur.as_deref() != Some(&v);
                        if changed {
                            *cur = Some(Arc::new(v));
                        }
                        changed
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cluster snapshot is not JSON"),
            },
            Err(e) => tracing::debug!(error = %e, "no cluster snapshot yet"),
        }
        let wait = async {
            loop {
                match updates.recv().await {
                    Ok(uri) if uri == SNAPSHOT_URI => break,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = wait => tokio::time::sleep(Duration::from_millis(200)).await,
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// A running agent host.
pub struct Running {
    pub addr: SocketAddr,
    pub password: String,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Start the agent host on `config.server.listen:port` (port 0 = ephemeral).
pub async fn start(mut config: Config) -> anyhow::Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if config.mcp.is_empty() {
        config.mcp = default_servers();
    }
    let password = match config.password()? {
        Some(p) => p,
        None => {
            let p = format!("jarvis-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            tracing::warn!("no auth.password configured; generated one for this run");
            p
        }
    };
    let store = store::Store::open(&config.store.path)?;
    let mcp = mcp::McpManager::start(config.mcp.clone()).await;
    let (provider, model, _prices) = llm::from_config(&config.llm);
    let agent = Arc::new(agent::Agent::new(mcp, provider, model, store, config.agent.clone(), config.llm.max_tokens));
    let lifetime = Duration::from_secs(3600 * config.auth.session_hours.unwrap_or(12).max(1));
    let auth = Arc::new(api::Auth::new(&password, config.auth.api_token.clone(), lifetime));
    let (events, _) = tokio::sync::broadcast::channel(4096);
    let stop = CancellationToken::new();
    let (cluster_tx, cluster) = tokio::sync::watch::channel(None);
    tokio::spawn(cluster_feed(agent.mcp.clone(), cluster_tx, stop.clone()));
    let state = api::AppState {
        agent: agent.clone(),
        auth,
        events,
        metrics: Arc::default(),
        web_dir: config.server.web_dir.clone(),
        shutdown: stop.clone(),
        cluster,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.server.listen, config.server.port)).await?;
    let addr = listener.local_addr()?;
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let s2 = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(async move { s2.cancelled().await }).await?;
        agent.store.checkpoint().await?;
        Ok(())
    });
    Ok(Running { addr, password, stop, task })
}
