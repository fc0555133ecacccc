//! Building the configured provider from the agent host's `[llm]` table.

use std::sync::Arc;

use super::config::{AnthropicConfig, OpenAiConfig, Secret};
use super::{AnthropicProvider, OpenAiProvider, PriceTable, Provider};
use crate::config::LlmConfig;

/// The provider to use, the model id to send, and its (input, output) price in USD per MTok.
///
/// Claude when an Anthropic key is configured (or in `ANTHROPIC_API_KEY`), else the local
/// OpenAI-compatible endpoint when `local_base_url` is set, else none (the agent host then runs without a
/// model and says so in its health report). `ANTHROPIC_BASE_URL` overrides the configured Anthropic base URL.
/// A model missing from the built-in price table is priced (0, 0).
pub fn from_config(cfg: &LlmConfig) -> (Option<Arc<dyn Provider>>, String, (f64, f64)) {
    let prices = PriceTable::builtin();
    let price_of = |model: &str| prices.price(model).map_or((0.0, 0.0), |p| (p.input, p.output));
    let anthropic = AnthropicConfig {
        base_url: cfg.anthropic_base_url.clone(),
        api_key: cfg.anthropic_api_key.clone().filter(|k| !k.trim().is_empty()).map(Secret::new),
        ..AnthropicConfig::default()
    }
    .with_env_overrides();
    if anthropic.api_key.is_some() {
        match AnthropicProvider::new(anthropic) {
            Ok(p) => return (Some(Arc::new(p)), cfg.anthropic_model.clone(), price_of(&cfg.anthropic_model)),
            Err(e) => tracing::error!(error = %e, "cannot set up the Anthropic provider"),
        }
    }
    if let Some(base_url) = cfg.local_base_url.clone().filter(|u| !u.trim().is_empty()) {
        let local = OpenAiConfig {
            name: "local".into(),
            base_url,
            api_key: cfg.local_api_key.clone().filter(|k| !k.trim().is_empty()).map(Secret::new),
            ..OpenAiConfig::default()
        };
        match OpenAiProvider::new(local) {
            Ok(p) => return (Some(Arc::new(p)), cfg.local_model.clone(), price_of(&cfg.local_model)),
            Err(e) => tracing::error!(error = %e, "cannot set up the local OpenAI-compatible provider"),
        }
    }
    (None, cfg.anthropic_model.clone(), (0.0, 0.0))
}
