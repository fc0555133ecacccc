//! Models: `list_voice_models` (GREEN) and `deploy_voice_model` (RED).

use std::sync::Arc;

use mcp_common::tier::Tier::{Green, Red};
use mcp_common::tool::{CallCtx, Registry, ToolError, ToolOutput, ToolSpec};
use mcp_common::untrusted;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::state::Voice;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployArgs {
    /// A model name from list_voice_models (a finished job's id, e.g. `vj-1a2b3c4d5e6f`).
    pub model: String,
}

#[derive(Debug, Serialize)]
struct ModelInfo {
    name: String,
    checkpoint: String,
    bytes: u64,
    job_state: Option<String>,
    dataset: Option<String>,
    finished_at: Option<i64>,
    active: bool,
}

pub fn register(r: &mut Registry<Voice>) {
    r.add(
        ToolSpec {
            name: "list_voice_models",
            title: "List voice models",
            description: "Trained voice models in the model store (each a finished training job's checkpoint), with size, \
                          dataset, finish time, and which one the TTS server speaks with now.",
            tier: Green,
            idempotent: true,
            open_world: false,
        },
        list_voice_models,
    );
    r.add(
        ToolSpec {
            name: "deploy_voice_model",
            title: "Deploy a voice model",
            description: "Make a trained model the live JARVIS voice: validate its checkpoint files, copy them atomically into \
                          the XTTS server's model folder, load them (switch_model or a container restart), run a test \
                          synthesis and roll back to the previous model if anything fails. On success subscribers of \
                          voice://models/active are told to drop cached speech.",
            tier: Red,
            idempotent: false,
            open_world: false,
        },
        deploy_voice_model,
    );
}

async fn list_voice_models(s: Arc<Voice>, _a: ListArgs, _ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let s2 = s.clone();
    let models = tokio::task::spawn_blocking(move || -> Vec<ModelInfo> {
        let active = s2.store.active().ok().flatten().map(|a| a.model);
        let mut out = Vec::new();
        let Ok(store) = s2.models_dir() else { return out };
        let Ok(rd) = std::fs::read_dir(store) else { return out };
        let mut names: Vec<String> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let dir = s2.config.jobs.models_dir.join(&name);
            let job = s2.store.job(&name).ok().flatten();
            if job.as_ref().is_some_and(|j| j.state != crate::store::state::SUCCEEDED) {
                continue;
            }
            let Some(ck) = crate::jobs::find_checkpoint(&dir, 2) else { continue };
            let bytes = std::fs::read_dir(&ck)
                .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
                .unwrap_or(0);
            out.push(ModelInfo {
                active: active.as_deref() == Some(name.as_str()),
                checkpoint: ck.display().to_string(),
                bytes,
                job_state: job.as_ref().map(|j| j.state.clone()),
                dataset: job.as_ref().map(|j| j.dataset.clone()),
                finished_at: job.as_ref().and_then(|j| j.finished_at),
                name,
            });
        }
        out
    })
    .await
    .map_err(|e| ToolError::Failed(format!("the worker stopped unexpectedly: {e}")))?;
    let lines: Vec<String> = models
        .iter()
        .map(|m| {
            format!("- {}{}: {} bytes in {}", m.name, if m.active { " (active)" } else { "" }, m.bytes, m.checkpoint)
        })
        .collect();
    let text = if lines.is_empty() {
        "No trained voice models yet (retrain_voice_model makes one).".to_string()
    } else {
        untrusted::wrap("voice model store", &lines.join("\n"))
    };
    let active = crate::resources::active_document(&s).unwrap_or_default();
    Ok(ToolOutput::new(text, json!({ "models": models, "active": active })).untrusted())
}

async fn deploy_voice_model(s: Arc<Voice>, a: DeployArgs, ctx: CallCtx) -> Result<ToolOutput, ToolError> {
    let d = crate::deploy::deploy(&s, &a.model, &ctx).await?;
    let text = format!(
        "Model {} is live on the {} server as {} (test synthesis: {:.1} s of audio){}. Subscribers of {} were told to drop \
         cached {} speech.",
        d.model,
        d.engine,
        d.model_dir,
        d.test_audio_secs,
        d.previous.as_deref().map(|p| format!("; previous model {p}")).unwrap_or_default(),
        crate::resources::ACTIVE_URI,
        d.engine
    );
    Ok(ToolOutput::new(text, &d))
}
