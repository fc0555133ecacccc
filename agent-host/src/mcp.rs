//! The MCP client manager: connects to every configured server (spawned over stdio or over
//! streamable HTTP), merges their tools, reads each tool's tier, restarts a server that dies
//! (with backoff; its tools disappear meanwhile) and forwards progress notifications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_common::tier::Tier;
use rmcp::ServiceExt;
use rmcp::handler::client::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, NumberOrString,
    ProgressNotificationParam, ProgressToken, ProtocolVersion, ReadResourceRequestParams, RequestMetaObject,
    ResourceContents, ResourceUpdatedNotificationParam, SubscribeRequestParams, Tool,
};
use rmcp::service::{NotificationContext, Peer, RoleClient};
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};
use tokio::sync::{RwLock, broadcast, mpsc};

use crate::config::McpServerConfig;

/// A tool as the agent sees it.
#[derive(Debug, Clone)]
pub struct ToolInfo {
    /// Name given to the model (prefixed with the server name on collisions).
    pub name: String,
    pub server: String,
    /// Name on its server.
    pub remote_name: String,
    pub tier: Tier,
    /// Where the tier came from: `jarvis` (declared) or `annotations` (third-party server).
    pub tier_source: &'static str,
    pub description: String,
    pub input_schema: Value,
}

/// A progress notification of a running tool call.
#[derive(Debug, Clone)]
pub struct Progress {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("no tool named '{0}'")]
    UnknownTool(String),
    #[error("MCP server '{0}' is not running")]
    ServerDown(String),
    #[error("MCP call failed: {0}")]
    Call(String),
}

/// The tier of a tool from `_meta["jarvis/tier"]`, else from its annotations (MCP defaults:
/// not read-only, destructive): readOnlyHint ⇒ GREEN, destructiveHint ⇒ RED, otherwise YELLOW.
/// An unrecognised declared tier is BLACK.
pub fn tier_of(tool: &Tool) -> (Tier, &'static str) {
    if let Some(t) = tool.meta.as_ref().and_then(|m| m.0.get(mcp_common::tool::META_TIER)) {
        return (t.as_str().and_then(|s| s.parse().ok()).unwrap_or(Tier::Black), "jarvis");
    }
    let a = tool.annotations.as_ref();
    if a.and_then(|a| a.read_only_hint).unwrap_or(false) {
        (Tier::Green, "annotations")
    } else if a.and_then(|a| a.destructive_hint).unwrap_or(true) {
        (Tier::Red, "annotations")
    } else {
        (Tier::Yellow, "annotations")
    }
}

type Routes = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Progress>>>>;

#[derive(Clone)]
struct Handler {
    routes: Routes,
    /// URIs of resources that changed (`notifications/resources/updated`).
    updates: broadcast::Sender<String>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut c =
            ClientConfig::new(ClientCapabilities::default(), Implementation::new("jarvis", env!("CARGO_PKG_VERSION")));
        c.protocol_version = ProtocolVersion::V_2025_11_25;
        c
    }

    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        let key = match &p.progress_token.0 {
            NumberOrString::String(s) => s.to_string(),
            NumberOrString::Number(n) => n.to_string(),
        };
        let tx = self.routes.lock().ok().and_then(|m| m.get(&key).cloned());
        if let Some(tx) = tx {
            let _ = tx.send(Progress { progress: p.progress, total: p.total, message: p.message });
        }
    }

    async fn on_resource_updated(&self, p: ResourceUpdatedNotificationParam, _c: NotificationContext<RoleClient>) {
        let _ = self.updates.send(p.uri);
    }
}

/// Health of one server for `/api/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerHealth {
    pub name: String,
    pub up: bool,
    pub tools: usize,
    pub restarts: u32,
    pub error: Option<String>,
}

struct Slot {
    peer: Option<Peer<RoleClient>>,
    tools: Vec<Tool>,
    /// URIs of the resources it offers (subscribed to on connect).
    resources: Vec<String>,
    restarts: u32,
    error: Option<String>,
}

pub struct McpManager {
    names: Vec<String>,
    slots: HashMap<String, Arc<RwLock<Slot>>>,
    routes: Routes,
    updates: broadcast::Sender<String>,
}

async fn connect(
    cfg: &McpServerConfig,
    handler: Handler,
) -> anyhow::Result<rmcp::service::RunningService<RoleClient, Handler>> {
    if let Some(url) = &cfg.url {
        let mut t =
            rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.as_str());
        if let Some(tok) = cfg.bearer()? {
            t = t.auth_header(tok);
        }
        return handler.serve(StreamableHttpClientTransport::from_config(t)).await.map_err(|e| {
            let e = e.to_string();
            if e.contains("Auth required") {
                anyhow::anyhow!(
                    "MCP server '{}' at {url} refused the bearer token (check token / token_file)",
                    cfg.name
                )
            } else {
                anyhow::anyhow!(e)
            }
        });
    }
    let cmd =
        cfg.command.clone().ok_or_else(|| anyhow::anyhow!("MCP server '{}' has neither command nor url", cfg.name))?;
    let args = cfg.args.clone();
    let env = cfg.env.clone();
    let child = TokioChildProcess::new(tokio::process::Command::new(&cmd).configure(move |c| {
        c.args(&args).envs(&env).kill_on_drop(true);
    }))?;
    Ok(handler.serve(child).await?)
}

impl McpManager {
    /// Connect to every server and keep them running in the background.
    pub async fn start(configs: Vec<McpServerConfig>) -> Arc<Self> {
        let routes: Routes = Arc::default();
        let (updates, _) = broadcast::channel(256);
        let mut slots = HashMap::new();
        let names: Vec<String> = configs.iter().map(|c| c.name.clone()).collect();
        for c in &configs {
            slots.insert(
                c.name.clone(),
                Arc::new(RwLock::new(Slot { peer: None, tools: vec![], resources: vec![], restarts: 0, error: None })),
            );
        }
        let me = Arc::new(Self { names, slots, routes, updates });
        let mut first = Vec::new();
        for cfg in configs {
            let slot = me.slots.get(&cfg.name).cloned();
            let handler = Handler { routes: me.routes.clone(), updates: me.updates.clone() };
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            if let Some(slot) = slot {
                tokio::spawn(supervise(cfg, slot, handler, ready_tx));
                first.push(ready_rx);
            }
        }
        // Wait (bounded) for the first connection attempt of each server.
        for rx in first {
            let _ = tokio::time::timeout(Duration::from_secs(20), rx).await;
        }
        me
    }

    /// All tools of the running servers; colliding names are prefixed `<server>__`.
    pub async fn tools(&self) -> Vec<ToolInfo> {
        let mut all: Vec<(String, Tool)> = Vec::new();
        for name in &self.names {
            if let Some(slot) = self.slots.get(name) {
                let s = slot.read().await;
                if s.peer.is_some() {
                    all.extend(s.tools.iter().cloned().map(|t| (name.clone(), t)));
                }
            }
        }
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (_, t) in &all {
            *counts.entry(t.name.to_string()).or_default() += 1;
        }
        all.into_iter()
            .map(|(server, t)| {
                let (tier, tier_source) = tier_of(&t);
                let remote = t.name.to_string();
                let name = if counts.get(&remote).copied().unwrap_or(0) > 1 {
                    format!("{server}__{remote}")
                } else {
                    remote.clone()
                };
                ToolInfo {
                    name,
                    server,
                    remote_name: remote,
                    tier,
                    tier_source,
                    description: t.description.as_deref().unwrap_or("").to_string(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                }
            })
            .collect()
    }

    pub async fn find(&self, name: &str) -> Option<ToolInfo> {
        self.tools().await.into_iter().find(|t| t.name == name)
    }

    /// Call a tool; progress notifications go to `progress` while it runs.
    pub async fn call(
        &self,
        tool: &ToolInfo,
        args: Value,
        request_id: &str,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<CallToolResult, McpError> {
        let slot = self.slots.get(&tool.server).ok_or_else(|| McpError::UnknownTool(tool.name.clone()))?;
        let peer = slot.read().await.peer.clone().ok_or_else(|| McpError::ServerDown(tool.server.clone()))?;
        let token = format!("{request_id}-{}", uuid::Uuid::new_v4());
        let mut meta =
            RequestMetaObject::with_progress_token(ProgressToken(NumberOrString::String(token.clone().into())));
        meta.0.0.insert(mcp_common::tool::META_REQUEST_ID.into(), json!(request_id));
        if let Some(tx) = progress
            && let Ok(mut m) = self.routes.lock()
        {
            m.insert(token.clone(), tx);
        }
        let mut params = CallToolRequestParams::new(tool.remote_name.clone());
        params.arguments = match args {
            Value::Object(m) => Some(m),
            Value::Null => None,
            other => return Err(McpError::Call(format!("tool arguments must be an object, got {other}"))),
        };
        params.meta = Some(meta);
        let r = peer.call_tool(params).await.map_err(|e| McpError::Call(e.to_string()));
        if let Ok(mut m) = self.routes.lock() {
            m.remove(&token);
        }
        r
    }

    /// Changes of subscribed resources (their URIs).
    pub fn resource_updates(&self) -> broadcast::Receiver<String> {
        self.updates.subscribe()
    }

    /// Read a resource from whichever running server offers it; its text content.
    pub async fn read_resource(&self, uri: &str) -> Result<String, McpError> {
        for name in &self.names {
            let Some(slot) = self.slots.get(name) else { continue };
            let peer = {
                let s = slot.read().await;
                if !s.resources.iter().any(|u| u == uri) {
                    continue;
                }
                s.peer.clone()
            };
            let peer = peer.ok_or_else(|| McpError::ServerDown(name.clone()))?;
            let r = peer
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .map_err(|e| McpError::Call(e.to_string()))?;
            return r
                .contents
                .into_iter()
                .find_map(|c| match c {
                    ResourceContents::TextResourceContents { text, .. } => Some(text),
                    _ => None,
                })
                .ok_or_else(|| McpError::Call(format!("{uri} has no text content")));
        }
        Err(McpError::Call(format!("no running MCP server offers {uri}")))
    }

    pub async fn health(&self) -> Vec<ServerHealth> {
        let mut out = Vec::new();
        for name in &self.names {
            if let Some(slot) = self.slots.get(name) {
                let s = slot.read().await;
                out.push(ServerHealth {
                    name: name.clone(),
                    up: s.peer.is_some(),
                    tools: s.tools.len(),
                    restarts: s.restarts,
                    error: s.error.clone(),
                });
            }
        }
        out
    }
}

/// Keep one server connected: connect, list tools, wait until it dies, back off, repeat.
async fn supervise(
    cfg: McpServerConfig,
    slot: Arc<RwLock<Slot>>,
    handler: Handler,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(500);
    loop {
        let started = Instant::now();
        match connect(&cfg, handler.clone()).await {
            Ok(running) => {
                let tools = running.peer().list_all_tools().await.unwrap_or_default();
                let resources: Vec<String> =
                    running.peer().list_all_resources().await.unwrap_or_default().into_iter().map(|r| r.uri).collect();
                for uri in &resources {
                    #[allow(deprecated)]
                    if let Err(e) = running.peer().subscribe(SubscribeRequestParams::new(uri.clone())).await {
                        tracing::debug!(server = %cfg.name, uri, error = %e, "resource not subscribable");
                    }
                }
                tracing::info!(server = %cfg.name, tools = tools.len(), "MCP server connected");
                {
                    let mut s = slot.write().await;
                    s.peer = Some(running.peer().clone());
                    s.tools = tools;
                    s.resources = resources;
                    s.error = None;
                }
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                // Ends when the transport closes (the child exited or the HTTP session ended).
                let reason = running.waiting().await;
                tracing::debug!(server = %cfg.name, ?reason, "MCP service loop ended");
                let mut s = slot.write().await;
                s.peer = None;
                s.restarts += 1;
                s.error = Some("server exited".into());
                tracing::warn!(server = %cfg.name, "MCP server died; restarting");
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = Duration::from_millis(500);
                }
            }
            Err(e) => {
                tracing::warn!(server = %cfg.name, error = %e, "cannot connect to MCP server");
                slot.write().await.error = Some(e.to_string());
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{JsonObject, MetaObject, ToolAnnotations};

    fn tool(meta: Option<&str>, ann: Option<ToolAnnotations>) -> Tool {
        let mut t = Tool::new("t", "d", Arc::new(JsonObject::new()));
        if let Some(m) = meta {
            let mut o = JsonObject::new();
            o.insert("jarvis/tier".into(), json!(m));
            t = t.with_meta(MetaObject(o));
        }
        if let Some(a) = ann {
            t = t.with_annotations(a);
        }
        t
    }

    #[test]
    fn tiers_come_from_meta_then_annotations_with_mcp_defaults() {
        assert_eq!(tier_of(&tool(Some("yellow"), None)).0, Tier::Yellow);
        assert_eq!(tier_of(&tool(Some("purple"), None)).0, Tier::Black);
        assert_eq!(tier_of(&tool(None, Some(ToolAnnotations::new().read_only(true)))).0, Tier::Green);
        assert_eq!(tier_of(&tool(None, Some(ToolAnnotations::new().destructive(true)))).0, Tier::Red);
        assert_eq!(
            tier_of(&tool(None, Some(ToolAnnotations::new().read_only(false).destructive(false)))).0,
            Tier::Yellow
        );
        assert_eq!(tier_of(&tool(None, None)).0, Tier::Red, "MCP defaults: not read-only, destructive");
    }
}
