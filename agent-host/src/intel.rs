//! The agent host's intelligence layer, as the agent loop sees it: route a message ([`crate::router`]),
//! fail over when a provider breaks, build the memory and history parts of a request ([`crate::memory`],
//! [`crate::context`]), and account the turn afterwards ([`crate::cost`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::config::LlmConfig;
use crate::context::{self, ContextConfig, InFlight, Summary, entities};
use crate::cost::{BudgetState, CostConfig, Costs, Request};
use crate::llm::config::{AnthropicConfig, OpenAiConfig, Secret};
use crate::llm::{AnthropicProvider, LlmError, Message, OpenAiProvider, Provider, Usage};
use crate::memory::{Memory, MemoryConfig, NewMemory, Tier, extract};
use crate::router::{self, Decision, Features, Health, RoutingConfig, Rule, Target, Unavailable};
use crate::store::{Store, StoreError};

const RULES_SETTING: &str = "routing.rules";

/// A provider and the model id sent to it.
#[derive(Clone)]
pub struct Model {
    pub provider: Arc<dyn Provider>,
    pub model: String,
}

/// The route of one turn.
#[derive(Clone)]
pub struct Plan {
    pub decision: Decision,
    pub model: Option<Model>,
    pub features: Features,
}

impl Plan {
    pub fn target(&self) -> Option<Target> {
        self.decision.target
    }

    /// `{provider, model, reason, rule}` for the WS `route` event and `done.route`.
    pub fn route_json(&self) -> Value {
        json!({
            "provider": self.decision.target.map(Target::as_str),
            "model": self.model.as_ref().map(|m| m.model.clone()),
            "reason": self.decision.reason,
            "rule": self.decision.rule,
        })
    }
}

pub struct Intel {
    pub anthropic: Option<Model>,
    pub local: Option<Model>,
    pub routing: RoutingConfig,
    pub context: ContextConfig,
    pub memory: Memory,
    pub costs: Costs,
    pub health: Health,
    /// The Claude model that prices `saved_usd`.
    pub reference_model: String,
    rules: RwLock<Vec<Rule>>,
    /// Node and guest names of the cluster (lower-case), so "restart atlas" is recognised.
    names: RwLock<Vec<String>>,
    store: Store,
    inflight: InFlight,
}

/// Both providers from `[llm]`: Claude when a key is configured (or in `ANTHROPIC_API_KEY`), the local
/// OpenAI-compatible endpoint when `local_base_url` is set.
pub fn providers(cfg: &LlmConfig) -> (Option<Model>, Option<Model>) {
    let anthropic = AnthropicConfig {
        base_url: cfg.anthropic_base_url.clone(),
        api_key: cfg.anthropic_api_key.clone().filter(|k| !k.trim().is_empty()).map(Secret::new),
        ..AnthropicConfig::default()
    }
    .with_env_overrides();
    let claude = anthropic
        .api_key
        .is_some()
        .then(|| AnthropicProvider::new(anthropic))
        .and_then(|r| r.map_err(|e| tracing::error!(error = %e, "cannot set up the Anthropic provider")).ok());
    let local = cfg.local_base_url.clone().filter(|u| !u.trim().is_empty()).and_then(|base_url| {
        OpenAiProvider::new(OpenAiConfig {
            name: "local".into(),
            base_url,
            api_key: cfg.local_api_key.clone().filter(|k| !k.trim().is_empty()).map(Secret::new),
            ..OpenAiConfig::default()
        })
        .map_err(|e| tracing::error!(error = %e, "cannot set up the local provider"))
        .ok()
    });
    (
        claude.map(|p| Model { provider: Arc::new(p), model: cfg.anthropic_model.clone() }),
        local.map(|p| Model { provider: Arc::new(p), model: cfg.local_model.clone() }),
    )
}

impl Intel {
    #[allow(clippy::too_many_arguments)]
    pub async fn new(
        store: Store,
        llm: &LlmConfig,
        routing: RoutingConfig,
        costs: CostConfig,
        memory: MemoryConfig,
        context: ContextConfig,
    ) -> Self {
        let (anthropic, local) = providers(llm);
        let saved = match store.setting(RULES_SETTING).await {
            Ok(Some(v)) => serde_json::from_str::<Vec<Rule>>(&v).ok().filter(|r| router::validate(r).is_ok()),
            _ => None,
        };
        let rules = saved.unwrap_or_else(|| {
            if routing.rules.is_empty() || router::validate(&routing.rules).is_err() {
                router::builtin_rules()
            } else {
                routing.rules.clone()
            }
        });
        Self {
            anthropic,
            local,
            reference_model: llm.anthropic_model.clone(),
            routing,
            context,
            memory: Memory::new(store.clone(), memory),
            costs: Costs::new(store.clone(), costs),
            health: Health::default(),
            rules: RwLock::new(rules),
            names: RwLock::default(),
            store,
            inflight: InFlight::default(),
        }
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.rules.read().map(|r| r.clone()).unwrap_or_else(|_| router::builtin_rules())
    }

    /// Replaces the rule set (validated) and persists it.
    pub async fn set_rules(&self, rules: Vec<Rule>) -> Result<Vec<Rule>, String> {
        router::validate(&rules)?;
        let text = serde_json::to_string(&rules).map_err(|e| e.to_string())?;
        self.store.set_setting(RULES_SETTING, &text).await.map_err(|e| e.to_string())?;
        if let Ok(mut r) = self.rules.write() {
            *r = rules.clone();
        }
        Ok(rules)
    }

    /// Takes node and guest names from a `pve://cluster/snapshot` document.
    pub fn learn_names(&self, snapshot: &Value) {
        let mut names: Vec<String> = Vec::new();
        for c in snapshot["clusters"].as_array().into_iter().flatten() {
            for n in c["nodes"].as_array().into_iter().flatten() {
                names.extend(n["node"].as_str().map(str::to_lowercase));
            }
            for g in c["guests"].as_array().into_iter().flatten() {
                names.extend(g["name"].as_str().map(str::to_lowercase));
            }
        }
        names.sort();
        names.dedup();
        if let Ok(mut n) = self.names.write() {
            *n = names;
        }
    }

    fn model_of(&self, t: Target) -> Option<&Model> {
        match t {
            Target::Anthropic => self.anthropic.as_ref(),
            Target::Local => self.local.as_ref(),
        }
    }

    async fn availability(&self, t: Target) -> Result<(), Unavailable> {
        if self.model_of(t).is_none() {
            return Err(Unavailable::NotConfigured);
        }
        self.health.status(t)?;
        if t == Target::Anthropic {
            match self.costs.budget(crate::memory::now()).await {
                Ok((BudgetState::Over, _, _)) => return Err(Unavailable::OverBudget),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the budget"),
            }
        }
        Ok(())
    }

    /// Who answered the session's previous message.
    async fn previous(&self, session: &str) -> Option<Target> {
        let msgs = self.store.messages(session).await.ok()?;
        msgs.iter().rev().find(|m| m.role == "assistant").and_then(|m| match m.provider.as_deref() {
            Some("anthropic") => Some(Target::Anthropic),
            Some("local") => Some(Target::Local),
            _ => None,
        })
    }

    fn plan(&self, decision: Decision, features: Features) -> Plan {
        let model = decision.target.and_then(|t| self.model_of(t).cloned());
        Plan { decision, model, features }
    }

    /// Routes one user message of `session`.
    pub async fn route(&self, session: &str, text: &str) -> Plan {
        let names = self.names.read().map(|n| n.clone()).unwrap_or_default();
        let features = Features::with_names(text, self.previous(session).await, &names);
        if !self.routing.enabled {
            let t = if self.anthropic.is_some() { Target::Anthropic } else { Target::Local };
            let d = Decision {
                target: self.model_of(t).map(|_| t),
                rule: "routing-off".into(),
                reason: "routing is turned off".into(),
                tools: t == Target::Anthropic || self.routing.local_tools,
                notice: None,
            };
            return self.plan(d, features);
        }
        let d = router::decide(
            &self.rules(),
            &features,
            self.availability(Target::Anthropic).await,
            self.availability(Target::Local).await,
            &self.routing,
        );
        self.plan(d, features)
    }

    /// After `err` from the plan's provider (before any output): marks it down and routes again. `None`
    /// when no other provider may take the message.
    pub async fn failover(&self, plan: &Plan, err: &LlmError) -> Option<Plan> {
        let t = plan.target()?;
        let why = match err {
            LlmError::RateLimited { retry_after, .. } => {
                let wait = retry_after.unwrap_or(Duration::from_secs(self.routing.down_secs));
                self.health.mark(t, Unavailable::RateLimited(format!("retry in {} s", wait.as_secs())), wait);
                return self.reroute(plan, t).await;
            }
            LlmError::Overloaded { .. } => "overloaded".to_string(),
            LlmError::Timeout { .. } | LlmError::Transport { .. } | LlmError::EmptyResponse { .. } => {
                "not answering".into()
            }
            LlmError::Http { status, .. } if *status >= 500 || *status == 401 || *status == 403 => {
                format!("HTTP {status}")
            }
            _ => return None,
        };
        self.health.mark(t, Unavailable::Down(why), Duration::from_secs(self.routing.down_secs));
        self.reroute(plan, t).await
    }

    async fn reroute(&self, plan: &Plan, failed: Target) -> Option<Plan> {
        let d = router::decide(
            &self.rules(),
            &plan.features,
            self.availability(Target::Anthropic).await,
            self.availability(Target::Local).await,
            &self.routing,
        );
        (d.target.is_some() && d.target != Some(failed)).then(|| self.plan(d, plan.features.clone()))
    }

    /// The memory part of the system prompt.
    pub async fn memory_block(&self, text: &str, local: bool) -> String {
        self.memory.prompt_block(text, local, crate::memory::now()).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "memory recall failed");
            String::new()
        })
    }

    /// The history to send: messages after the stored summary, cut to the token budget, and the prompt
    /// block standing for what was left out (summary + entities of everything older).
    pub async fn history(&self, session: &str, all: Vec<(i64, Message)>, local: bool) -> (Vec<Message>, String) {
        let summary = context::load_summary(&self.store, session).await.ok().flatten().unwrap_or_default();
        let rest: Vec<(i64, Message)> = all.into_iter().filter(|(id, _)| *id > summary.upto_id).collect();
        let msgs: Vec<Message> = rest.iter().map(|(_, m)| m.clone()).collect();
        let budget = if local { self.context.local_recent_tokens } else { self.context.recent_tokens };
        let start = context::window_start(&msgs, budget);
        let dropped = entities::extract(&context::transcript(&msgs[..start]));
        let block = summary.prompt_block(&dropped, self.context.entities_per_kind);
        (msgs[start..].to_vec(), block)
    }

    /// Summarises what no longer fits the window, in the background (local model first, Claude second).
    pub fn summarise_later(self: &Arc<Self>, session: &str) {
        if !self.inflight.begin(session) {
            return;
        }
        let (me, session) = (self.clone(), session.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.summarise_now(&session).await {
                tracing::warn!(session, error = %e, "summary failed");
            }
            if let Err(e) = me.session_summary(&session).await {
                tracing::warn!(session, error = %e, "session summary failed");
            }
            me.inflight.end(&session);
        });
    }

    /// Folds the messages outside the local window into the session summary. Returns whether it did.
    pub async fn summarise_now(&self, session: &str) -> anyhow::Result<bool> {
        let prev: Summary = context::load_summary(&self.store, session).await?.unwrap_or_default();
        let all: Vec<(i64, Message)> = self
            .store
            .messages(session)
            .await?
            .into_iter()
            .filter(|m| m.id > prev.upto_id)
            .filter_map(|m| crate::agent::to_llm(&m.role, &m.content).map(|x| (m.id, x)))
            .collect();
        let msgs: Vec<Message> = all.iter().map(|(_, m)| m.clone()).collect();
        let start = context::window_start(&msgs, self.context.local_recent_tokens);
        if start == 0 {
            return Ok(false);
        }
        let older = &all[..start];
        let mut last_err = None;
        for m in [self.local.as_ref(), self.anthropic.as_ref()].into_iter().flatten() {
            match context::summarise(m.provider.as_ref(), &m.model, &prev, older, &self.context).await {
                Ok((s, invented)) => {
                    if !invented.is_empty() {
                        tracing::info!(session, ?invented, "summary named entities absent from the source; dropped");
                    }
                    context::save_summary(&self.store, session, &s).await?;
                    let key = format!("session:{session}");
                    let mem = NewMemory {
                        tier: Tier::Conversation,
                        kind: "summary".into(),
                        text: format!("Session summary: {}", s.text),
                        key,
                        source: format!("summary:{}", m.provider.name()),
                        session_id: Some(session.to_string()),
                    };
                    self.memory.add(mem, crate::memory::now()).await?;
                    return Ok(true);
                }
                Err(e) => last_err = Some(e),
            }
        }
        match last_err {
            Some(e) => Err(e.into()),
            None => Ok(false),
        }
    }

    /// Refreshes the session's summary memory with the local model every `session_summary_every` new
    /// messages (folding the new ones into the previous summary). Returns whether it wrote one.
    pub async fn session_summary(&self, session: &str) -> anyhow::Result<bool> {
        let every = self.memory.cfg.session_summary_every;
        let Some(local) = self.local.as_ref().filter(|_| every > 0) else { return Ok(false) };
        let key = format!("memory.session_summary.{session}");
        let (upto, text) = match self.store.setting(&key).await? {
            Some(v) => serde_json::from_str::<(i64, String)>(&v).unwrap_or_default(),
            None => (0, String::new()),
        };
        let new: Vec<(i64, Message)> = self
            .store
            .messages(session)
            .await?
            .into_iter()
            .filter(|m| m.id > upto)
            .filter_map(|m| crate::agent::to_llm(&m.role, &m.content).map(|x| (m.id, x)))
            .collect();
        if new.len() < every {
            return Ok(false);
        }
        let prev = Summary { upto_id: upto, text, entities: Vec::new() };
        let (s, _) = context::summarise(local.provider.as_ref(), &local.model, &prev, &new, &self.context).await?;
        self.store.set_setting(&key, &serde_json::to_string(&(s.upto_id, s.text.clone()))?).await?;
        let mem = NewMemory {
            tier: Tier::Conversation,
            kind: "summary".into(),
            text: format!("Session summary: {}", s.text),
            key: format!("session:{session}"),
            source: "summary:local".into(),
            session_id: Some(session.to_string()),
        };
        self.memory.add(mem, crate::memory::now()).await?;
        Ok(true)
    }

    /// Preferences and facts the operator stated in `text` (their own message), de-duplicated.
    pub async fn learn_from_user(&self, session: &str, text: &str) -> Result<usize, StoreError> {
        let found = extract::from_user_message(text);
        for e in &found {
            let m = NewMemory {
                tier: Tier::Semantic,
                kind: e.kind.into(),
                text: e.text.clone(),
                key: e.key.clone(),
                source: "user:chat".into(),
                session_id: Some(session.to_string()),
            };
            self.memory.add(m, crate::memory::now()).await?;
        }
        Ok(found.len())
    }

    /// One exchange as a conversation memory.
    pub async fn remember_exchange(&self, session: &str, user: &str, answer: &str) -> Result<(), StoreError> {
        let short = |s: &str, n: usize| s.chars().take(n).collect::<String>();
        let text = format!("Operator: {} — Jarvis: {}", short(user, 300), short(answer, 300));
        let m = NewMemory {
            tier: Tier::Conversation,
            kind: "exchange".into(),
            key: format!("{}:{}", crate::memory::now(), extract::normalize(&short(user, 80))),
            text,
            source: format!("session:{session}"),
            session_id: Some(session.to_string()),
        };
        self.memory.add(m, crate::memory::now()).await.map(|_| ())
    }

    /// Records one model request of a turn (a turn with tool calls makes several), priced for the
    /// model of `plan` that served it; returns its cost (None when unknown or there is no model).
    pub async fn record_request(&self, session: &str, plan: &Plan, usage: &Usage) -> Option<f64> {
        let model = plan.model.as_ref()?;
        let (usd, saved) = self.costs.price(&model.model, usage, &self.reference_model);
        let saved = if plan.target() == Some(Target::Local) { saved } else { 0.0 };
        let req = Request {
            session_id: Some(session.to_string()),
            provider: model.provider.name().to_string(),
            model: model.model.clone(),
            usage: *usage,
            usd,
            saved_usd: saved,
        };
        if let Err(e) = self.costs.record(req, crate::memory::now()).await {
            tracing::warn!(error = %e, "cannot record the cost");
        }
        usd
    }

    /// Budget notices after a turn (warning and cap, each once per day).
    pub async fn budget_notices(&self) -> Vec<String> {
        let now = crate::memory::now();
        let mut notices = Vec::new();
        if let Ok((state, daily, monthly)) = self.costs.budget(now).await
            && state != BudgetState::Ok
        {
            let day = crate::memory::rfc3339(now)[..10].to_string();
            let key = format!("costs.notice.{day}.{state:?}");
            if self.store.setting(&key).await.ok().flatten().is_none() {
                let _ = self.store.set_setting(&key, "sent").await;
                let caps = format!(
                    "today ${daily:.2}{}, this month ${monthly:.2}{}",
                    self.costs.cfg.daily_budget_usd.map(|c| format!(" of ${c:.2}")).unwrap_or_default(),
                    self.costs.cfg.monthly_budget_usd.map(|c| format!(" of ${c:.2}")).unwrap_or_default()
                );
                notices.push(match state {
                    BudgetState::Warn => format!("Budget warning: {caps} spent on Claude (80 % of a cap reached)."),
                    _ => format!(
                        "Budget cap reached: {caps}. Claude is paused; the local model answers, and actions wait."
                    ),
                });
            }
        }
        notices
    }

    /// The cost summary (`GET /api/costs`, WS `cost`).
    pub async fn cost_summary(&self) -> Value {
        self.costs.summary(crate::memory::now()).await.unwrap_or_else(|e| json!({"error": e.to_string()}))
    }
}
