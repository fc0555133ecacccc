//! The Jarvis agent host (`jarvis` binary).
//!
//! - [`mcp`]: connects to the MCP servers, merges their tools with their tiers, restarts dead ones.
//! - [`llm`]: one provider trait; Anthropic Messages API and OpenAI-compatible adapters.
//! - [`gate`]: the safety gate and one-shot, hash-bound human approvals.
//! - [`agent`]: the loop (stream, gate, call tools, feed results back).
//! - [`router`], [`cost`], [`memory`], [`context`], [`intel`]: which model answers, what it costs, what
//!   Jarvis remembers, how long conversations fit the model's context.
//! - [`store`]: SQLite (sessions, messages, events, approvals, settings).
//! - [`api`]: login, `/ws`, REST, health, metrics, the dashboard.
//! - [`voice`]: spoken answers (sentence TTS with fallback engines, cache, Opus) and speech input.
//! - [`monitor`]: alerts, runbooks within the autonomy level, events, notifications.
//! - [`rrd`]: `GET /api/rrd`, RRD history for the dashboard charts (via GREEN MCP tools).
//! - [`demo`]: the simulated cluster + MCP servers + agent host in one command.

pub mod agent;
pub mod api;
pub mod config;
pub mod context;
pub mod cost;
pub mod demo;
pub mod gate;
pub mod intel;
pub mod intel_api;
pub mod llm;
pub mod mcp;
pub mod memory;
pub mod monitor;
pub mod router;
pub mod rrd;
pub mod store;
mod turn;
pub mod voice;

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

/// mcp-voice announces a newly deployed (or rolled back) voice model on `voice://models/active`:
/// cached speech of that engine is in the old voice, so it goes.
async fn voice_model_changes(mcp: Arc<mcp::McpManager>, voice: Arc<voice::VoiceService>, stop: CancellationToken) {
    const ACTIVE_MODEL: &str = "voice://models/active";
    let mut updates = mcp.resource_updates();
    loop {
        let uri = tokio::select! {
            r = updates.recv() => match r {
                Ok(u) => u,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => ACTIVE_MODEL.to_string(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = stop.cancelled() => return,
        };
        if uri != ACTIVE_MODEL {
            continue;
        }
        let engine = match mcp.read_resource(ACTIVE_MODEL).await {
            Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("engine").and_then(|e| e.as_str()).map(str::to_string)),
            Err(e) => {
                tracing::warn!(error = %e, "reading {ACTIVE_MODEL}");
                None
            }
        };
        // Without a readable engine name every engine's cache goes (stale audio is worse than a miss).
        let engines: Vec<String> = match engine {
            Some(e) => vec![e],
            None => voice.tts.engines.iter().map(|t| t.id().to_string()).collect(),
        };
        for e in engines {
            let files = voice.cache.clear_engine(&e).await;
            tracing::info!(engine = %e, files, "voice model changed; speech cache cleared");
        }
    }
}

/// Alerts, autonomous actions and their outcomes become episodic memories ("what actions have you
/// taken today?"). The monitor already sanitised the cluster's text; recall wraps it as data.
async fn remember_monitor_events(
    mut events: tokio::sync::broadcast::Receiver<monitor::events::MonitorEvent>,
    memory: memory::Memory,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let e = tokio::select! {
            r = events.recv() => match r {
                Ok(e) => e,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "monitor events not remembered (memory writer lagging)");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            _ = stop.cancelled() => return,
        };
        if e.kind == "info" {
            continue;
        }
        let kind = if e.auto { "action" } else { "alert" };
        let source = if e.auto { "monitor:auto" } else { "monitor" };
        let text = format!("{} ({}): {}", e.title, e.kind, e.detail);
        if let Err(err) = memory.remember_event(kind, &text, source, None).await {
            tracing::warn!(error = %err, "could not remember a monitor event");
        }
    }
}

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
    /// The monitor (tests drive `Monitor::evaluate` with `[monitor] interval_secs = 0`).
    pub monitor: Arc<monitor::Monitor>,
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
    let intel = Arc::new(
        intel::Intel::new(
            store.clone(),
            &config.llm,
            config.routing.clone(),
            config.costs.clone(),
            config.memory.clone(),
            config.context.clone(),
        )
        .await,
    );
    let agent = Arc::new(agent::Agent::new(
        mcp,
        provider,
        model,
        store,
        config.agent.clone(),
        config.llm.max_tokens,
        intel.clone(),
    ));
    let lifetime = Duration::from_secs(3600 * config.auth.session_hours.unwrap_or(12).max(1));
    let auth = Arc::new(
        api::Auth::new(&password, config.auth.api_token.clone().filter(|t| !t.is_empty()), lifetime)
            .with_secure_cookie(config.server.cookie_secure()),
    );
    let (events, _) = tokio::sync::broadcast::channel(4096);
    let stop = CancellationToken::new();
    let voice = voice::VoiceService::start(config.voice.clone(), agent.store.clone(), stop.clone()).await;
    let (cluster_tx, cluster) = tokio::sync::watch::channel(None);
    tokio::spawn(cluster_feed(agent.mcp.clone(), cluster_tx, stop.clone()));
    let monitor = monitor::Monitor::new(config.monitor.clone(), agent.clone()).await;
    tokio::spawn(monitor.clone().run(cluster.clone(), stop.clone()));
    tokio::spawn(intel.memory.clone().run_cleanup(stop.clone()));
    tokio::spawn(voice_model_changes(agent.mcp.clone(), voice.clone(), stop.clone()));
    tokio::spawn(remember_monitor_events(monitor.subscribe(), intel.memory.clone(), stop.clone()));
    let (mut names_rx, names_intel, names_stop) = (cluster.clone(), intel.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let snap = names_rx.borrow_and_update().clone();
            if let Some(v) = snap {
                names_intel.learn_names(&v);
            }
            tokio::select! {
                r = names_rx.changed() => if r.is_err() { return },
                _ = names_stop.cancelled() => return,
            }
        }
    });
    let state = api::AppState {
        agent: agent.clone(),
        auth,
        events,
        metrics: Arc::default(),
        web_dir: config.server.web_dir.clone(),
        shutdown: stop.clone(),
        cluster,
        voice,
        monitor: monitor.clone(),
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
    Ok(Running { addr, password, stop, monitor, task })
}
