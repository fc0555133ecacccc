//! The gate every tool call passes through, and server start-up over stdio or streamable HTTP.
//!
//! `JarvisServer` implements the MCP server handler for any tool registry: it publishes each
//! tool with its effective tier, refuses BLACK tools, tools above `max_tier` and (through
//! `CallCtx::guard`) protected resources, audits every non-GREEN call and every refusal, and
//! turns every failure into a readable tool error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::ServiceExt;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock, GetTaskParams,
    GetTaskResult, Implementation, ListResourcesResult, ListToolsResult, MetaObject, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, TASKS_EXTENSION_ID, UnsubscribeRequestParams,
    UpdateTaskParams,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::task_manager::TaskManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditLog, Record};
use crate::config::{ServerSection, Transport};
use crate::policy::{Policy, Refusal};
use crate::resources::{ResourceSource, SharedSubscriptions};
use crate::tier::Tier;
use crate::tool::{CallCtx, META_REQUEST_ID, Registry, ToolError, ToolOutput};
use crate::untrusted::META_UNTRUSTED;

/// One MCP server: identity, tools, state, and the rules its gate applies.
pub struct JarvisServer<S> {
    pub name: &'static str,
    pub version: &'static str,
    pub instructions: String,
    pub state: Arc<S>,
    pub registry: Arc<Registry<S>>,
    pub policy: Arc<Policy>,
    pub max_tier: Tier,
    pub audit: Option<Arc<AuditLog>>,
    /// Resources (e.g. a cluster snapshot) with change notifications.
    pub resources: Option<Arc<dyn ResourceSource>>,
    /// This session's resource subscriptions (a clone for a new session starts empty).
    pub subscriptions: SharedSubscriptions,
    /// Extra Prometheus lines for `/metrics` on the HTTP transport (e.g. upstream call counts).
    pub metrics: Option<MetricsFn>,
    /// Long tool calls running as MCP tasks, shared by every session (see [`crate::tasks`]).
    pub tasks: TaskManager,
}

/// Produces Prometheus text lines describing the server's own counters.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

impl<S> Clone for JarvisServer<S> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            version: self.version,
            instructions: self.instructions.clone(),
            state: self.state.clone(),
            registry: self.registry.clone(),
            policy: self.policy.clone(),
            max_tier: self.max_tier,
            audit: self.audit.clone(),
            resources: self.resources.clone(),
            subscriptions: SharedSubscriptions::default(),
            metrics: self.metrics.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

fn request_id(ctx: &RequestContext<RoleServer>) -> String {
    ctx.meta
        .0
        .0
        .get(META_REQUEST_ID)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn error_result(e: &ToolError) -> CallToolResult {
    let text = match e {
        ToolError::Refused(r) => format!("Refused: {} (rule: {})", r.message, r.rule),
        other => other.to_string(),
    };
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    r.structured_content = Some(e.structured());
    r
}

fn ok_result(out: ToolOutput) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(out.text)]);
    r.structured_content = out.structured;
    if out.untrusted {
        let mut m = rmcp::model::JsonObject::new();
        m.insert(META_UNTRUSTED.into(), json!(true));
        r.meta = Some(MetaObject(m));
    }
    r
}

impl<S: Send + Sync + 'static> JarvisServer<S> {
    /// Whether a tool at `tier` may run on this server at all.
    pub fn enabled(&self, tier: Tier) -> bool {
        tier != Tier::Black && tier <= self.max_tier
    }

    /// The gate for a tier, before the handler runs.
    pub fn gate(&self, tool: &str, tier: Tier) -> Result<(), Refusal> {
        if tier == Tier::Black {
            return Err(Refusal::new(
                "black_tier",
                format!(
                    "'{tool}' is BLACK: Jarvis never runs it; do it yourself in the Proxmox web UI or shell if you really mean it"
                ),
            ));
        }
        if tier > self.max_tier {
            return Err(Refusal::new(
                "max_tier",
                format!(
                    "'{tool}' is {} but this server runs with max_tier {}; the operator must restart it with --max-tier {} to allow it",
                    tier.as_str().to_uppercase(),
                    self.max_tier,
                    tier
                ),
            ));
        }
        Ok(())
    }

    /// Run one call through the gate, the handler and the audit log.
    pub async fn dispatch(&self, name: &str, args: Value, ctx: CallCtx) -> CallToolResult {
        let started = Instant::now();
        let args_for_audit = args.clone();
        let Some(def) = self.registry.get(name) else {
            let e = ToolError::Refused(Refusal::new("unknown_tool", format!("there is no tool named '{name}'")));
            self.audit(&ctx.request_id, name, &args_for_audit, Tier::Black, &Err(e.clone()), started);
            return error_result(&e);
        };
        let tier = self.policy.effective_tier(name, def.spec.tier);
        let mut ctx = ctx;
        ctx.tier = tier;
        let result = match self.gate(name, tier) {
            Err(r) => Err(ToolError::Refused(r)),
            Ok(()) => {
                let cancel = ctx.cancel.clone();
                tokio::select! {
                    r = def.call(self.state.clone(), args, ctx.clone()) => r,
                    _ = cancel.cancelled() => Err(ToolError::Failed("cancelled by the client".into())),
                }
            }
        };
        if tier > Tier::Green || matches!(result, Err(ToolError::Refused(_))) {
            self.audit(&ctx.request_id, name, &args_for_audit, tier, &result, started);
        }
        match result {
            Ok(out) => ok_result(out),
            Err(e) => error_result(&e),
        }
    }

    fn audit(
        &self,
        request_id: &str,
        tool: &str,
        args: &Value,
        tier: Tier,
        r: &Result<ToolOutput, ToolError>,
        t: Instant,
    ) {
        let Some(log) = &self.audit else { return };
        let (decision, rule, outcome, detail) = match r {
            Ok(_) => ("allowed", None, "ok", None),
            Err(ToolError::Refused(x)) => ("refused", Some(x.rule.clone()), "refused", Some(x.message.clone())),
            Err(e) => ("allowed", None, "error", Some(e.to_string())),
        };
        let rec = Record {
            request_id: request_id.to_string(),
            tool: tool.to_string(),
            arguments: args.clone(),
            tier: tier.as_str().into(),
            decision: decision.into(),
            rule,
            outcome: outcome.into(),
            detail,
            duration_ms: t.elapsed().as_millis() as u64,
        };
        if let Err(e) = log.append(rec) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}

impl<S: Send + Sync + 'static> ServerHandler for JarvisServer<S> {
    fn get_info(&self) -> ServerConfig {
        let mut caps = if self.resources.is_some() {
            ServerCapabilities::builder().enable_tools().enable_resources().enable_resources_subscribe().build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        if self.registry.has_long_running() {
            caps.extensions.get_or_insert_with(Default::default).insert(TASKS_EXTENSION_ID.into(), Default::default());
        }
        ServerConfig::new(caps)
            .with_server_info(Implementation::new(self.name, self.version))
            .with_instructions(self.instructions.clone())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = self
            .registry
            .iter()
            .map(|d| {
                let tier = self.policy.effective_tier(d.spec.name, d.spec.tier);
                d.to_tool(tier, self.enabled(tier))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(self.resources.as_ref().map(|r| r.list()).unwrap_or_default()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(src) = &self.resources else {
            return Err(ErrorData::resource_not_found(format!("no resource '{}'", request.uri), None));
        };
        if !src.list().iter().any(|r| r.uri == request.uri) {
            return Err(ErrorData::resource_not_found(format!("no resource '{}'", request.uri), None));
        }
        match src.read(request.uri.clone()).await {
            Ok((mime, text)) => {
                Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri).with_mime_type(mime)]).into())
            }
            Err(e) => Err(ErrorData::internal_error(format!("cannot read {}: {e}", request.uri), None)),
        }
    }

    /// `subscriptions/listen` (protocol 2026-07-28, which has no `resources/subscribe`): the requested
    /// resources this server can watch; unknown ones are left out of the acknowledgment.
    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        let src = self.resources.as_ref()?;
        let uris: Vec<String> =
            requested.resource_subscriptions.iter().flatten().filter(|u| src.watch(u).is_some()).cloned().collect();
        Some(SubscriptionFilter::builder().resource_subscriptions(uris).build())
    }

    /// One `subscriptions/listen` stream: `notifications/resources/updated` for each accepted resource
    /// whenever it changes, until the client cancels it or goes away.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let Some(src) = self.resources.clone() else { return Ok(()) };
        let uris = context.accepted().resource_subscriptions.clone().unwrap_or_default();
        crate::resources::forward_changes(src.as_ref(), uris, context.sink(), context.cancelled()).await;
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let rx = self.resources.as_ref().and_then(|r| r.watch(&request.uri));
        match rx {
            Some(rx) => {
                self.subscriptions.subscribe(request.uri, rx, context.peer);
                Ok(())
            }
            None => {
                Err(ErrorData::resource_not_found(format!("resource '{}' cannot be subscribed to", request.uri), None))
            }
        }
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut ctx = CallCtx::new(request_id(&context), Tier::Green, self.policy.clone(), context.ct.clone());
        if let Some(token) = context.meta.get_progress_token() {
            ctx = ctx.with_progress(context.peer.clone(), token);
        }
        let args = request.arguments.map(Value::Object).unwrap_or(Value::Null);
        if crate::tasks::wanted(self, &request.name, &context) {
            return crate::tasks::call(self, request.name.into_owned(), args, ctx, context.ct.clone()).await;
        }
        Ok(self.dispatch(&request.name, args, ctx).await.into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        Ok(GetTaskResult::new(self.tasks.get_task(&request.task_id)?))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.cancel_task(&request.task_id)
    }
}

#[derive(Clone)]
struct Bearer(Option<Arc<str>>);

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_bearer(State(b): State<Bearer>, req: Request, next: Next) -> Response {
    if let Some(expected) = &b.0 {
        let got = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_eq(got.as_bytes(), expected.as_bytes()) {
            return (StatusCode::UNAUTHORIZED, [("www-authenticate", "Bearer")], "missing or wrong bearer token\n")
                .into_response();
        }
    }
    next.run(req).await
}

/// Serve `server` as `cfg` says until SIGINT/SIGTERM (HTTP) or until stdin closes (stdio).
pub async fn serve<S: Send + Sync + 'static>(server: JarvisServer<S>, cfg: &ServerSection) -> anyhow::Result<()> {
    match cfg.transport {
        Transport::Stdio => {
            tracing::info!(server = server.name, max_tier = %server.max_tier, "serving MCP over stdio");
            let running = server.serve(rmcp::transport::stdio()).await?;
            running.waiting().await?;
            Ok(())
        }
        Transport::Http => {
            let token = cfg.bearer_token()?;
            if !cfg.listen.is_loopback() && token.is_none() {
                anyhow::bail!(
                    "refusing to listen on {} without a bearer token: set server.token_file or the TOKEN environment variable",
                    cfg.listen
                );
            }
            let addr = SocketAddr::new(cfg.listen, cfg.port);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
            serve_http(server, cfg, token, listener, CancellationToken::new()).await
        }
    }
}

/// The HTTP router (`/mcp`, `/healthz`), exposed for tests that bind their own listener.
pub async fn serve_http<S: Send + Sync + 'static>(
    server: JarvisServer<S>,
    cfg: &ServerSection,
    token: Option<String>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let local = listener.local_addr()?;
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into(), "[::1]".into()];
    hosts.extend(cfg.allowed_hosts.iter().cloned());
    let http_cfg = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(cfg.allowed_origins.clone())
        .enforce_origin_validation()
        .with_cancellation_token(stop.child_token());
    let name = server.name;
    let max_tier = server.max_tier;
    let metrics = server.metrics.clone();
    let svc = StreamableHttpService::new(move || Ok(server.clone()), LocalSessionManager::default().into(), http_cfg);
    let bearer = Bearer(token.map(Into::into));
    // `/mcp` and `/metrics` need the bearer token (when one is set); `/healthz` is public.
    let app = axum::Router::new()
        .nest_service("/mcp", svc)
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move { m.map(|f| f()).unwrap_or_default() }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(bearer, require_bearer))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }));
    tracing::info!(server = name, %local, max_tier = %max_tier, "serving MCP over streamable HTTP at /mcp");
    let shutdown = async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
            _ = stop.cancelled() => {}
        }
    };
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
