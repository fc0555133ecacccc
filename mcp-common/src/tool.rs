//! Declaring a tool once: name, description, argument type (its JSON schema comes from
//! schemars), tier and hints, next to its handler. The registry turns the declaration into
//! the MCP tool definition (`_meta["jarvis/tier"]`, consistent annotations) and is the only
//! dispatch path, so the gate in `server` sees every call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::model::{JsonObject, MetaObject, ProgressNotificationParam, ProgressToken, Tool, ToolAnnotations};
use rmcp::service::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::policy::{Policy, Refusal, Target};
use crate::tasks::{META_LONG_RUNNING, TaskLink};
use crate::tier::Tier;

/// `_meta` key carrying a tool's tier.
pub const META_TIER: &str = "jarvis/tier";
/// `_meta` key: false when the server's `max_tier` (or BLACK) makes the tool refuse every call.
pub const META_ENABLED: &str = "jarvis/enabled";
/// `_meta` key on requests: the caller's request id, echoed into the audit log.
pub const META_REQUEST_ID: &str = "jarvis/request_id";

/// Everything about a tool except its argument type and handler.
#[derive(Debug, Clone, Copy)]
pub struct ToolSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub tier: Tier,
    /// Calling it twice with the same arguments has no further effect.
    pub idempotent: bool,
    /// It talks to things outside this server's own domain (the internet, other hosts).
    pub open_world: bool,
}

/// The MCP annotations that follow from a tier (and the two free hints).
pub fn annotations(title: &str, tier: Tier, idempotent: bool, open_world: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(tier.read_only())
        .destructive(tier.destructive())
        .idempotent(idempotent || tier.read_only())
        .open_world(open_world)
}

/// A tool's successful result: readable text plus structured content.
#[derive(Debug, Clone, Default)]
pub struct ToolOutput {
    pub text: String,
    pub structured: Option<Value>,
    /// Carries outside text (wrapped with `untrusted::wrap`); sets `_meta["jarvis/untrusted"]`.
    pub untrusted: bool,
}

impl ToolOutput {
    pub fn new(text: impl Into<String>, structured: impl Serialize) -> Self {
        Self { text: text.into(), structured: serde_json::to_value(structured).ok(), untrusted: false }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self { text: text.into(), structured: None, untrusted: false }
    }

    pub fn untrusted(mut self) -> Self {
        self.untrusted = true;
        self
    }
}

/// Why a tool call did not succeed. Every variant reaches the caller as a tool error
/// (`isError: true`) with a readable message, never as a protocol error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ToolError {
    /// The arguments are wrong; the caller can fix them.
    #[error("invalid arguments: {0}")]
    Invalid(String),
    /// A rule refused the call.
    #[error("{0}")]
    Refused(Refusal),
    /// The operation was attempted and failed.
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::Invalid(_) => "invalid_arguments",
            ToolError::Refused(_) => "refused",
            ToolError::Failed(_) => "failed",
        }
    }

    pub fn structured(&self) -> Value {
        match self {
            ToolError::Refused(r) => json!({"error": "refused", "rule": r.rule, "message": r.message}),
            other => json!({"error": other.kind(), "message": other.to_string()}),
        }
    }
}

impl From<Refusal> for ToolError {
    fn from(r: Refusal) -> Self {
        ToolError::Refused(r)
    }
}

/// Per-call context handed to a handler.
#[derive(Clone)]
pub struct CallCtx {
    pub request_id: String,
    /// The tier this call runs at (after the policy).
    pub tier: Tier,
    pub policy: Arc<Policy>,
    /// Cancelled when the client cancels the request.
    pub cancel: CancellationToken,
    progress: Option<(Peer<RoleServer>, ProgressToken)>,
    /// Set when the call may continue as an MCP task (see [`crate::tasks`]).
    task: Option<Arc<TaskLink>>,
}

impl CallCtx {
    pub fn new(request_id: String, tier: Tier, policy: Arc<Policy>, cancel: CancellationToken) -> Self {
        Self { request_id, tier, policy, cancel, progress: None, task: None }
    }

    /// This call may continue as a task; `cancel` becomes its cancellation token.
    pub(crate) fn with_task(mut self, link: Arc<TaskLink>, cancel: CancellationToken) -> Self {
        self.task = Some(link);
        self.cancel = cancel;
        self
    }

    /// True when the client takes MCP tasks and the tool is long-running: once the handler calls
    /// [`Self::accepted`], the client gets a task handle and the call goes on in the background.
    /// A handler that would otherwise return early (e.g. "job started") may use this to stay
    /// with the work until it ends.
    pub fn may_run_as_task(&self) -> bool {
        self.task.is_some()
    }

    /// The call passed its checks and the long part begins: from here it may continue as an MCP
    /// task, with `status` as the task's first status message (put ids the client needs later,
    /// e.g. a job id, in it). Does nothing for an ordinary call; only the first call counts.
    pub fn accepted(&self, status: impl Into<String>) {
        if let Some(link) = &self.task {
            link.accept(status.into());
        }
    }

    pub fn with_progress(mut self, peer: Peer<RoleServer>, token: ProgressToken) -> Self {
        self.progress = Some((peer, token));
        self
    }

    /// A context for calling handlers directly (tests, benchmarks).
    pub fn detached(tier: Tier, policy: Arc<Policy>) -> Self {
        Self::new("detached".into(), tier, policy, CancellationToken::new())
    }

    /// Refuse if `target` is protected and this call is above GREEN.
    pub fn guard(&self, target: &Target) -> Result<(), ToolError> {
        self.policy.check_protected(self.tier, target).map_err(ToolError::Refused)
    }

    /// Send a progress notification if the client asked for them.
    /// Once the call runs as an MCP task, the message becomes the task's status message instead.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        let message = message.into();
        if self.task.as_ref().is_some_and(|t| t.status(&message)) {
            return;
        }
        if let Some((peer, token)) = &self.progress {
            let mut p = ProgressNotificationParam::new(token.clone(), progress);
            p.total = total;
            p.message = Some(message);
            if let Err(e) = peer.notify_progress(p).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
    }
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler<S> = Arc<dyn Fn(Arc<S>, Value, CallCtx) -> BoxFuture<Result<ToolOutput, ToolError>> + Send + Sync>;

pub struct ToolDef<S> {
    pub spec: ToolSpec,
    pub input_schema: Arc<JsonObject>,
    /// It can outlive a call: offered as an MCP task to clients that take them.
    pub long_running: bool,
    handler: Handler<S>,
}

impl<S> ToolDef<S> {
    /// The MCP definition at `tier`, enabled or not.
    pub fn to_tool(&self, tier: Tier, enabled: bool) -> Tool {
        let mut meta = JsonObject::new();
        meta.insert(META_TIER.into(), json!(tier.as_str()));
        meta.insert(META_ENABLED.into(), json!(enabled));
        if self.long_running {
            meta.insert(META_LONG_RUNNING.into(), json!(true));
        }
        Tool::new(self.spec.name, self.spec.description, self.input_schema.clone())
            .with_title(self.spec.title)
            .with_annotations(annotations(self.spec.title, tier, self.spec.idempotent, self.spec.open_world))
            .with_meta(MetaObject(meta))
    }

    pub fn call(&self, state: Arc<S>, args: Value, ctx: CallCtx) -> BoxFuture<Result<ToolOutput, ToolError>> {
        (self.handler)(state, args, ctx)
    }
}

/// A server's tools, in declaration order.
pub struct Registry<S> {
    tools: Vec<ToolDef<S>>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self { tools: Vec::new() }
    }
}

impl<S: Send + Sync + 'static> Registry<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declare a tool. `A` is its argument type; a call whose arguments do not deserialize
    /// into `A` is answered with [`ToolError::Invalid`] and never reaches `handler`.
    pub fn add<A, F, Fut>(&mut self, spec: ToolSpec, handler: F) -> &mut Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(Arc<S>, A, CallCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        assert!(!self.tools.iter().any(|t| t.spec.name == spec.name), "tool '{}' declared twice", spec.name);
        let handler = Arc::new(handler);
        let h: Handler<S> = Arc::new(move |state, args, ctx| {
            let handler = handler.clone();
            Box::pin(async move {
                let args = if args.is_null() { Value::Object(Default::default()) } else { args };
                let parsed: A = serde_json::from_value(args).map_err(|e| ToolError::Invalid(e.to_string()))?;
                handler(state, parsed, ctx).await
            })
        });
        self.tools.push(ToolDef {
            spec,
            input_schema: rmcp::handler::server::common::schema_for_type::<A>(),
            long_running: false,
            handler: h,
        });
        self
    }

    /// Declare a tool that can outlive a call (training, extraction, a Proxmox task). For clients
    /// that declared the MCP tasks extension it continues as a task once its handler calls
    /// [`CallCtx::accepted`]; for every other client it is an ordinary call.
    pub fn add_long_running<A, F, Fut>(&mut self, spec: ToolSpec, handler: F) -> &mut Self
    where
        A: DeserializeOwned + JsonSchema + Send + 'static,
        F: Fn(Arc<S>, A, CallCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolOutput, ToolError>> + Send + 'static,
    {
        self.add(spec, handler);
        if let Some(t) = self.tools.last_mut() {
            t.long_running = true;
        }
        self
    }

    /// Whether any tool can run as an MCP task (the server then advertises the extension).
    pub fn has_long_running(&self) -> bool {
        self.tools.iter().any(|t| t.long_running)
    }

    pub fn get(&self, name: &str) -> Option<&ToolDef<S>> {
        self.tools.iter().find(|t| t.spec.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ToolDef<S>> {
        self.tools.iter()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Check the declarations: names are snake_case verbs-first identifiers, descriptions and
    /// titles are present, and the published annotations agree with each tool's tier. Every
    /// server's test suite calls this on its registry.
    pub fn check(&self) -> Result<(), String> {
        for d in &self.tools {
            let s = d.spec;
            let name_ok = !s.name.is_empty()
                && s.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !s.name.starts_with('_');
            if !name_ok {
                return Err(format!("tool name '{}' is not snake_case", s.name));
            }
            if s.description.trim().len() < 10 || s.title.trim().is_empty() {
                return Err(format!("tool '{}' needs a title and a real description", s.name));
            }
            for tier in Tier::ALL {
                let t = d.to_tool(tier, true);
                let a = t.annotations.as_ref().ok_or_else(|| format!("tool '{}' has no annotations", s.name))?;
                let meta_tier = t.meta.as_ref().and_then(|m| m.0.get(META_TIER)).and_then(Value::as_str);
                if meta_tier != Some(tier.as_str())
                    || a.read_only_hint != Some(tier.read_only())
                    || a.destructive_hint != Some(tier.destructive())
                {
                    return Err(format!("tool '{}' publishes annotations that disagree with tier {tier}", s.name));
                }
            }
            if d.input_schema.get("type").and_then(Value::as_str) != Some("object") {
                return Err(format!("tool '{}' arguments must be a JSON object schema", s.name));
            }
        }
        Ok(())
    }

    /// Declared tier of a tool (for policy checks).
    pub fn declared_tier(&self, name: &str) -> Option<Tier> {
        self.get(name).map(|t| t.spec.tier)
    }
}
