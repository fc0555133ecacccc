//! Every mcp-voice tool, declared once with its tier (DESIGN §4).
//!
//! GREEN: `list_voice_models`, `voice_job_status`.
//! YELLOW: `extract_voice_audio`, `prepare_voice_dataset`, `retrain_voice_model`, `cancel_voice_job`.
//! RED: `deploy_voice_model`.

mod audio;
mod models;
mod train;

use mcp_common::tool::Registry;

use crate::state::Voice;

/// The registry of all tools.
pub fn registry() -> Registry<Voice> {
    let mut r = Registry::new();
    audio::register(&mut r);
    train::register(&mut r);
    models::register(&mut r);
    r
}
