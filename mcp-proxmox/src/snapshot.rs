//! The `pve://cluster/snapshot` resource: nodes, guests, storage, quorum and recent tasks of
//! every cluster in one JSON document, for dashboards and the monitor.
//!
//! One poller per server refreshes it while at least one client subscribes, and every
//! subscriber is notified from that single refresh — so the Proxmox call budget is flat: about
//! 60/interval resource reads per minute plus quorum and tasks every `slow_every` intervals,
//! whether one dashboard watches or fifty.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcp_common::resources::ResourceSource;
use mcp_common::tool::BoxFuture;
use mcp_common::untrusted;
use rmcp::model::Resource;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use crate::service::{Pve, Ttl};

pub const URI: &str = "pve://cluster/snapshot";

#[derive(Default)]
struct State {
    doc: Option<Arc<String>>,
    digest: Vec<u8>,
    built: Option<Instant>,
    /// Per cluster: last /cluster/status and /cluster/tasks, refreshed every `slow_every` cycles.
    slow: HashMap<String, (Value, Value)>,
    cycle: u64,
}

pub struct Snapshotter {
    pve: Arc<Pve>,
    tx: watch::Sender<u64>,
    state: Mutex<State>,
    poller: OnceLock<()>,
    interval: Duration,
    slow_every: u64,
}

/// The resource source handed to the MCP gate.
pub struct SnapshotSource(pub Arc<Snapshotter>);

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Snapshotter {
    pub fn new(pve: Arc<Pve>) -> Arc<Self> {
        let cfg = pve.config.snapshot.clone();
        let (tx, _) = watch::channel(0);
        Arc::new(Self {
            pve,
            tx,
            state: Mutex::new(State::default()),
            poller: OnceLock::new(),
            interval: Duration::from_secs(cfg.interval_secs.max(1)),
            slow_every: u64::from(cfg.slow_every.max(1)),
        })
    }

    /// Rebuild the document; returns it and whether it changed.
    pub async fn refresh(&self, force_slow: bool) -> Result<(Arc<String>, bool), String> {
        let mut st = self.state.lock().await;
        st.cycle += 1;
        let slow_due = force_slow || st.cycle % self.slow_every == 1 || self.slow_every == 1;
        let mut clusters = Vec::new();
        for c in self.pve.clusters() {
            let mut entry = json!({"name": c.name});
            match c.resources().await {
                Ok(res) => {
                    let pick = |k: &str| res.iter().filter(|r| r.kind == k).collect::<Vec<_>>();
                    entry["nodes"] = json!(pick("node"));
                    entry["storage"] = json!(pick("storage"));
                    let guests: Vec<Value> = res
                        .iter()
                        .filter(|r| r.is_guest())
                        .map(|g| {
                            let mut v = json!(g);
                            if let Some(n) = &g.name {
                                v["name"] = json!(untrusted::sanitize(n).0);
                            }
                            v
                        })
                        .collect();
                    entry["guests"] = json!(guests);
                }
                Err(e) => entry["error"] = json!(e.to_string()),
            }
            if slow_due || !st.slow.contains_key(&c.name) {
                let status = c.get_as::<Value>(Ttl::Resources, "/cluster/status", &[]).await.unwrap_or(Value::Null);
                let tasks = c.get_as::<Vec<Value>>(Ttl::Tasks, "/cluster/tasks", &[]).await.map(|mut t| {
                    t.truncate(25);
                    Value::Array(t)
                });
                st.slow.insert(c.name.clone(), (status, tasks.unwrap_or(Value::Null)));
            }
            if let Some((status, tasks)) = st.slow.get(&c.name) {
                let quorate = status
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x.get("type").and_then(Value::as_str) == Some("cluster")))
                    .and_then(|x| x.get("quorate"))
                    .and_then(Value::as_u64)
                    .map(|q| q == 1);
                entry["quorate"] = json!(quorate);
                entry["tasks"] = tasks.clone();
            }
            clusters.push(entry);
        }
        let body = json!({"clusters": clusters});
        let text = serde_json::to_string(&body).map_err(|e| e.to_string())?;
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().to_vec();
        let changed = digest != st.digest;
        let doc = Arc::new(format!(r#"{{"generated_at":{},{}"#, now_secs(), &text[1..]));
        st.digest = digest;
        st.doc = Some(doc.clone());
        st.built = Some(Instant::now());
        Ok((doc, changed))
    }

    /// The current document: the poller's if fresh, else a new one.
    pub async fn current(&self) -> Result<Arc<String>, String> {
        {
            let st = self.state.lock().await;
            if let (Some(doc), Some(t)) = (&st.doc, st.built)
                && t.elapsed() < self.interval
            {
                return Ok(doc.clone());
            }
        }
        self.refresh(true).await.map(|(d, _)| d)
    }

    fn ensure_poller(self: &Arc<Self>) {
        if self.poller.set(()).is_err() {
            return;
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let interval = match me.upgrade() {
                Some(s) => s.interval,
                None => return,
            };
            loop {
                // Hold only a weak reference while sleeping, so a dropped server ends the poller.
                tokio::time::sleep(interval).await;
                let Some(s) = me.upgrade() else { return };
                if s.tx.receiver_count() == 0 {
                    continue;
                }
                match s.refresh(false).await {
                    Ok((_, true)) => s.tx.send_modify(|v| *v += 1),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "snapshot refresh failed"),
                }
            }
        });
    }
}

impl ResourceSource for SnapshotSource {
    fn list(&self) -> Vec<Resource> {
        vec![Resource::new(URI, "cluster-snapshot")
            .with_title("Cluster snapshot")
            .with_description("Nodes, guests, storage, quorum and recent tasks of every configured cluster (JSON); subscribe for changes.")
            .with_mime_type("application/json")]
    }

    fn read(&self, uri: String) -> BoxFuture<Result<(String, String), String>> {
        let s = self.0.clone();
        Box::pin(async move {
            if uri != URI {
                return Err(format!("unknown resource {uri}"));
            }
            s.current().await.map(|d| ("application/json".to_string(), (*d).clone()))
        })
    }

    fn watch(&self, uri: &str) -> Option<watch::Receiver<u64>> {
        (uri == URI).then(|| {
            self.0.ensure_poller();
            self.0.tx.subscribe()
        })
    }
}
