//! The monitor: watches every cluster snapshot (and node temperatures), turns values into
//! alerts with sustain delays, hysteresis and flapping detection ([`conditions`]), runs
//! runbooks within the operator's autonomy level and the safety gate ([`runbooks`]), stores
//! every decision as an event ([`events`]), notifies ([`notify`]) and explains itself
//! ([`explain`]).
//!
//! Other parts of Jarvis can follow the events with [`Monitor::subscribe`] (e.g. to keep them
//! as episodic memories).

pub mod api;
pub mod conditions;
pub mod config;
pub mod engine;
pub mod events;
pub mod explain;
pub mod notify;
pub mod runbooks;
pub mod track;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use conditions::{Condition, Phase, Track};
use config::MonitorConfig;
use engine::Engine;
use events::{Kind, MonitorEvent, NewEvent};
use notify::{Notifier, Verdict};

/// Settings key of the autonomy level chosen in the dashboard.
pub const AUTONOMY_KEY: &str = "monitor_autonomy";

pub fn autonomy_name(level: u8) -> &'static str {
    match level {
        0 => "L0 observe",
        1 => "L1 notify",
        2 => "L2 suggest",
        3 => "L3 act and report",
        _ => "L4 act silently",
    }
}

pub struct Monitor {
    pub cfg: MonitorConfig,
    pub(crate) agent: Arc<Agent>,
    engine: Mutex<Engine>,
    events: broadcast::Sender<MonitorEvent>,
    notifier: Notifier,
    actions: runbooks::Actions,
    autonomy: AtomicU8,
    background: Mutex<JoinSet<()>>,
    /// Notification channels left out because their configuration is wrong.
    notify_errors: Vec<String>,
}

impl Monitor {
    /// Build the monitor (autonomy from the store if the operator changed it, else from config).
    pub async fn new(cfg: MonitorConfig, agent: Arc<Agent>) -> Arc<Self> {
        let (notifier, errors) = Notifier::new(cfg.notify.clone());
        for e in &errors {
            tracing::error!(error = %e, "notification channel disabled");
        }
        let notify_errors = errors.iter().map(ToString::to_string).collect();
        let stored = agent.store.setting(AUTONOMY_KEY).await.ok().flatten().and_then(|v| v.parse::<u8>().ok());
        let autonomy = stored.unwrap_or(cfg.autonomy).min(4);
        let (events, _) = broadcast::channel(1024);
        Arc::new(Self {
            cfg,
            agent,
            engine: Mutex::default(),
            events,
            notifier,
            actions: runbooks::Actions::default(),
            autonomy: AtomicU8::new(autonomy),
            background: Mutex::default(),
            notify_errors,
        })
    }

    /// Every event as it is stored (the dashboard feed and, later, episodic memory).
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorEvent> {
        self.events.subscribe()
    }

    /// The cluster snapshot read now from the MCP server (not the dashboard's copy).
    pub async fn read_snapshot(&self) -> Result<Value, String> {
        let text = self.agent.mcp.read_resource(crate::SNAPSHOT_URI).await.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    pub fn autonomy(&self) -> u8 {
        self.autonomy.load(Ordering::Relaxed)
    }

    pub async fn set_autonomy(self: &Arc<Self>, level: u8) -> Result<(), crate::store::StoreError> {
        let level = level.min(4);
        self.agent.store.set_setting(AUTONOMY_KEY, &level.to_string()).await?;
        let old = self.autonomy.swap(level, Ordering::Relaxed);
        if old != level {
            let e = NewEvent {
                kind: Kind::Info,
                severity: "info".into(),
                resource: None,
                condition: None,
                title: format!("Autonomy set to {}", autonomy_name(level)),
                detail: format!("Was {}.", autonomy_name(old)),
                auto: false,
                data: json!({"from": old, "to": level}),
            };
            self.emit(e, events::now_unix()).await;
        }
        Ok(())
    }

    /// Evaluate on every snapshot change and every `interval_secs` until `stop`.
    pub async fn run(self: Arc<Self>, mut cluster: watch::Receiver<Option<Arc<Value>>>, stop: CancellationToken) {
        if !self.cfg.enabled || self.cfg.interval_secs == 0 {
            return;
        }
        let every = Duration::from_secs(self.cfg.interval_secs);
        loop {
            tokio::select! {
                r = cluster.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            let snap = cluster.borrow_and_update().clone();
            if let Some(s) = snap {
                self.evaluate(&s, events::now_unix()).await;
            }
        }
    }

    async fn read_temperatures(&self, now: f64) {
        let due = {
            let e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            e.temps_at.is_none_or(|t| now - t >= self.cfg.temperature_every_secs as f64)
        };
        if !due {
            return;
        }
        let mut temps = HashMap::new();
        if let Some(tool) = self.agent.mcp.find("node_temperatures").await {
            match self.agent.mcp.call(&tool, json!({}), "monitor-temperatures", None).await {
                Ok(r) => {
                    let nodes = r.structured_content.as_ref().and_then(|v| v.get("nodes")).and_then(Value::as_array);
                    for n in nodes.into_iter().flatten() {
                        let fresh = n.get("status").and_then(Value::as_str) == Some("ok");
                        let node = n.get("node").and_then(Value::as_str);
                        let hot = n.get("hottest").and_then(|h| h.get("current")).and_then(Value::as_f64);
                        if let (true, Some(node), Some(hot)) = (fresh, node, hot) {
                            temps.insert(node.to_string(), hot);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "node temperatures unavailable"),
            }
        }
        let mut e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        e.temps = temps;
        e.temps_at = Some(now);
    }

    /// One evaluation of `snapshot` at time `now` (Unix seconds): alerts, clears, runbooks.
    pub async fn evaluate(self: &Arc<Self>, snapshot: &Value, now: f64) {
        if self.cfg.temperatures {
            self.read_temperatures(now).await;
        }
        let a = {
            let mut eng = self.engine.lock().unwrap_or_else(|e| e.into_inner());
            eng.assess(&self.cfg, snapshot, now)
        };
        let (emits, persist, candidates) = (a.events, a.samples, a.candidates);
        if !persist.is_empty()
            && let Err(e) = events::store_samples(&self.agent.store, persist, now).await
        {
            tracing::warn!(error = %e, "cannot store monitor samples");
        }
        if let Err(e) = events::prune(&self.agent.store, now, self.cfg.retention()).await {
            tracing::warn!(error = %e, "cannot prune monitor samples and events");
        }
        for e in emits {
            self.emit(e, now).await;
        }
        runbooks::consider(self, candidates, now).await;
    }

    /// Store, publish and (maybe) notify one event.
    pub async fn emit(self: &Arc<Self>, e: NewEvent, now: f64) -> MonitorEvent {
        let stored = match events::insert(&self.agent.store, &e, now).await {
            Ok(s) => s,
            Err(err) => {
                tracing::error!(error = %err, "cannot store a monitor event");
                MonitorEvent {
                    id: 0,
                    ts: events::rfc3339(now),
                    kind: e.kind.as_str().into(),
                    severity: e.severity.clone(),
                    resource: e.resource.clone(),
                    condition: e.condition.clone(),
                    title: e.title.clone(),
                    detail: e.detail.clone(),
                    auto: e.auto,
                    unix: now,
                }
            }
        };
        tracing::info!(kind = %stored.kind, severity = %stored.severity, title = %stored.title, "monitor event");
        let _ = self.events.send(stored.clone());
        let verdict = self.notifier.decide(&stored, self.autonomy());
        if verdict == Verdict::Send && self.notifier.channels() > 0 {
            // Deliveries run in the background; `settle` waits for them.
            self.spawn_delivery(stored.clone());
        } else if verdict != Verdict::Skip {
            tracing::debug!(id = stored.id, verdict = notify::verdict_text(&verdict), "notification not sent");
        }
        stored
    }

    fn spawn_delivery(self: &Arc<Self>, ev: MonitorEvent) {
        let me = self.clone();
        self.spawn(async move {
            let failures = me.notifier.deliver(&ev).await;
            let _ = me
                .agent
                .store
                .event("notification", json!({"event_id": ev.id, "ok": failures.is_empty(), "failures": failures}))
                .await;
        });
    }

    /// Run `f` in the background (deliveries, runbooks); `settle` waits for it.
    pub(crate) fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut js = self.background.lock().unwrap_or_else(|e| e.into_inner());
        while js.try_join_next().is_some() {}
        js.spawn(f);
    }

    /// Wait until every runbook and delivery started so far (and those they start) is done.
    pub async fn settle(&self) {
        loop {
            let mut js = std::mem::take(&mut *self.background.lock().unwrap_or_else(|e| e.into_inner()));
            if js.is_empty() {
                return;
            }
            while js.join_next().await.is_some() {}
        }
    }

    /// Alerts firing now: (condition, resource, since, value, severity, label).
    pub fn active(&self) -> Vec<Value> {
        let e = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(f64, Value)> = e
            .tracks
            .iter()
            .filter_map(|((c, r), t)| match &t.phase {
                Phase::Firing { since, severity, .. } => Some((
                    *since,
                    json!({
                        "condition": c.as_str(), "resource": r, "since": events::rfc3339(*since),
                        "value": t.samples.back().map(|s| s.value), "severity": severity, "label": t.label,
                        "flapping": t.flapping,
                    }),
                )),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// Working channels and the configuration errors of the others (for the settings view).
    pub fn notify_status(&self) -> Value {
        json!({"channels": self.notifier.channels(), "errors": self.notify_errors})
    }

    pub(crate) fn track(&self, c: Condition, resource: &str) -> Option<Track> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner()).tracks.get(&(c, resource.to_string())).cloned()
    }
}
