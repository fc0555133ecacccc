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

#[cfg(test)]
mod tests {
    use mcp_common::tier::Tier;

    #[test]
    fn every_tool_is_declared_once_with_the_tier_design_gives_it() {
        let r = super::registry();
        r.check().expect("declarations are consistent");
        let tiers: Vec<(&str, Tier)> = r.iter().map(|d| (d.spec.name, d.spec.tier)).collect();
        assert_eq!(
            tiers,
            [
                ("extract_voice_audio", Tier::Yellow),
                ("prepare_voice_dataset", Tier::Yellow),
                ("retrain_voice_model", Tier::Yellow),
                ("cancel_voice_job", Tier::Yellow),
                ("voice_job_status", Tier::Green),
                ("list_voice_models", Tier::Green),
                ("deploy_voice_model", Tier::Red),
            ]
        );
    }
}
