//! Engine health: an engine that failed (error or missed deadline) is marked down and skipped
//! until a background probe sees it answer its health check again. When every engine is down
//! they are all tried anyway: being marked down never leaves an answer silent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use voice::stt::SttEngine;
use voice::tts::TtsEngine;

/// Which engines are down, since when and why.
#[derive(Default)]
pub struct Health {
    down: Mutex<HashMap<String, (Instant, String)>>,
}

impl Health {
    pub fn is_up(&self, id: &str) -> bool {
        !self.down.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id)
    }

    pub fn mark_down(&self, id: &str, why: &str) {
        let mut m = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if !m.contains_key(id) {
            tracing::warn!(engine = id, reason = why, "speech engine marked down");
            m.insert(id.to_string(), (Instant::now(), why.to_string()));
        }
    }

    pub fn mark_up(&self, id: &str) {
        if self.down.lock().unwrap_or_else(|e| e.into_inner()).remove(id).is_some() {
            tracing::info!(engine = id, "speech engine recovered");
        }
    }

    pub fn down_ids(&self) -> Vec<String> {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }
}

/// The configured TTS engines, in preference order, with their health.
pub struct TtsSet {
    pub engines: Vec<Arc<dyn TtsEngine>>,
    pub health: Health,
}

impl TtsSet {
    pub fn new(engines: Vec<Arc<dyn TtsEngine>>) -> Self {
        Self { engines, health: Health::default() }
    }

    /// Engines for one response: the preferred engine first, then the others in config order.
    pub fn order(&self, preferred: Option<&str>) -> Vec<Arc<dyn TtsEngine>> {
        let mut v = self.engines.clone();
        if let Some(p) = preferred
            && let Some(i) = v.iter().position(|e| e.id() == p)
        {
            let e = v.remove(i);
            v.insert(0, e);
        }
        v
    }

    /// Probe every engine that is down; the ones that answer are up again.
    pub async fn probe(&self, timeout: Duration) {
        for id in self.health.down_ids() {
            let Some(e) = self.engines.iter().find(|e| e.id() == id) else { continue };
            if let Ok(Ok(())) = tokio::time::timeout(timeout, e.health()).await {
                self.health.mark_up(&id);
            }
        }
    }
}

/// The configured STT engines with their health.
pub struct SttSet {
    pub engines: Vec<Arc<dyn SttEngine>>,
    pub health: Health,
}

impl SttSet {
    pub async fn probe(&self, timeout: Duration) {
        for id in self.health.down_ids() {
            let Some(e) = self.engines.iter().find(|e| e.id() == id) else { continue };
            if let Ok(Ok(())) = tokio::time::timeout(timeout, e.health()).await {
                self.health.mark_up(&id);
            }
        }
    }
}

/// Probe down engines every `every` until `stop`.
pub fn spawn_prober(tts: Arc<TtsSet>, stt: Arc<SttSet>, every: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        let timeout = every.min(Duration::from_secs(5)).max(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            tts.probe(timeout).await;
            stt.probe(timeout).await;
        }
    });
}
