//! MCP resources a server publishes, read on demand and watched for changes.
//!
//! A server hands the gate a [`ResourceSource`]; the gate answers `resources/list` and
//! `resources/read`, and for each `resources/subscribe` (protocols up to 2025-11-25) runs a small
//! task that turns the source's change counter into `notifications/resources/updated` until the
//! client unsubscribes or goes away. Protocol 2026-07-28 has `subscriptions/listen` instead: one
//! request whose stream carries the updates of every resource it named ([`forward_changes`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{Resource, ResourceUpdatedNotificationParam};
use rmcp::service::{Peer, RoleServer, SubscriptionSink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::tool::BoxFuture;

pub trait ResourceSource: Send + Sync + 'static {
    /// The resources offered.
    fn list(&self) -> Vec<Resource>;
    /// Current content of `uri` as (mime type, text); `Err` with a readable reason.
    fn read(&self, uri: String) -> BoxFuture<Result<(String, String), String>>;
    /// A counter that changes whenever `uri` may have changed; `None` if it cannot be watched.
    fn watch(&self, uri: &str) -> Option<watch::Receiver<u64>>;
}

/// The subscriptions of one client session (dropped with it).
#[derive(Default)]
pub struct Subscriptions {
    tasks: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Subscriptions {
    /// Start forwarding changes of `uri` to `peer` (replacing an earlier subscription).
    pub fn subscribe(&self, uri: String, mut rx: watch::Receiver<u64>, peer: Peer<RoleServer>) {
        let u = uri.clone();
        let task = tokio::spawn(async move {
            rx.borrow_and_update();
            while rx.changed().await.is_ok() {
                if let Err(e) = peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(u.clone())).await {
                    tracing::debug!(uri = %u, error = %e, "subscriber gone");
                    break;
                }
            }
        });
        let mut map = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = map.insert(uri, task) {
            old.abort();
        }
    }

    pub fn unsubscribe(&self, uri: &str) {
        if let Some(t) = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(uri) {
            t.abort();
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        if let Ok(m) = self.tasks.get_mut() {
            for (_, t) in m.drain() {
                t.abort();
            }
        }
    }
}

/// Send `notifications/resources/updated` on `sink` whenever one of `uris` changes, until `stop`
/// completes or the client is gone (a `subscriptions/listen` stream).
pub async fn forward_changes(
    src: &dyn ResourceSource,
    uris: Vec<String>,
    sink: &SubscriptionSink,
    stop: impl std::future::Future<Output = ()>,
) {
    let (tx, mut changed) = tokio::sync::mpsc::channel::<String>(16);
    let mut watchers = tokio::task::JoinSet::new();
    for uri in uris {
        let Some(mut rx) = src.watch(&uri) else { continue };
        let tx = tx.clone();
        watchers.spawn(async move {
            rx.borrow_and_update();
            while rx.changed().await.is_ok() {
                if tx.send(uri.clone()).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            uri = changed.recv() => {
                let Some(uri) = uri else { break };
                if let Err(e) = sink.notify_resource_updated(uri.clone()).await {
                    tracing::debug!(uri = %uri, error = %e, "listener gone");
                    break;
                }
            }
        }
    }
    // Dropping the set aborts the watchers.
}

/// Shared handle used by the gate.
pub type SharedSubscriptions = Arc<Subscriptions>;
