//! `voice://models/active`: which voice the XTTS server speaks with. It changes only when
//! `deploy_voice_model` switches (or rolls back) a model; subscribers get
//! `notifications/resources/updated` then, which is the agent host's cue to drop its TTS cache
//! for the engine named in the document.

use std::sync::Arc;

use mcp_common::resources::ResourceSource;
use mcp_common::tool::BoxFuture;
use rmcp::model::Resource;
use serde_json::json;
use tokio::sync::watch;

use crate::state::Voice;

pub const ACTIVE_URI: &str = "voice://models/active";

pub struct Models(pub Arc<Voice>);

/// The document behind `voice://models/active`.
pub fn active_document(s: &Voice) -> Result<serde_json::Value, String> {
    let active = s.store.active().map_err(|e| e.to_string())?;
    Ok(json!({
        "engine": s.config.deploy.engine,
        "tts_url": s.config.deploy.tts_url,
        "model": active.as_ref().map(|a| a.model.clone()),
        "model_dir": active.as_ref().map(|a| a.dir_name.clone()),
        "deployed_at": active.as_ref().map(|a| a.at),
        "previous": active.as_ref().and_then(|a| a.previous.clone()),
        "clear_tts_cache": true,
    }))
}

impl ResourceSource for Models {
    fn list(&self) -> Vec<Resource> {
        vec![Resource::new(ACTIVE_URI, "active-voice-model")
            .with_title("Active voice model")
            .with_description("The XTTS model the voice server speaks with (JSON). Subscribe: an update means the voice changed and cached speech of this engine is stale.")
            .with_mime_type("application/json")]
    }

    fn read(&self, uri: String) -> BoxFuture<Result<(String, String), String>> {
        let s = self.0.clone();
        Box::pin(async move {
            if uri != ACTIVE_URI {
                return Err(format!("unknown resource {uri}"));
            }
            let doc = active_document(&s)?;
            Ok(("application/json".to_string(), doc.to_string()))
        })
    }

    fn watch(&self, uri: &str) -> Option<watch::Receiver<u64>> {
        (uri == ACTIVE_URI).then(|| self.0.active_changed.subscribe())
    }
}
