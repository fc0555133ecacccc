//! Cost of a model call in USD, from its [`Usage`] and a price table that is configuration: model ids and
//! prices change more often than the code (stack-notes part B §7 lists three disagreeing snapshots), so the
//! built-in table is only a default (`prices.default.toml`) that `jarvis.toml` can extend or replace.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Usage;

/// The compiled-in default table.
const DEFAULT_PRICES: &str = include_str!("prices.default.toml");

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_read: f64,
    #[serde(default)]
    pub cache_write: f64,
}

impl ModelPrice {
    /// The cost of `usage` at these prices.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, per_mtok: f64| tokens as f64 * per_mtok / 1_000_000.0;
        per_token(usage.input_tokens, self.input)
            + per_token(usage.output_tokens, self.output)
            + per_token(usage.cache_read_tokens, self.cache_read)
            + per_token(usage.cache_write_tokens, self.cache_write)
    }
}

/// Model id → price, e.g. the `[prices]` table of `jarvis.toml`:
/// `[prices."claude-sonnet-4-6"] input = 3.0, output = 15.0, cache_read = 0.3, cache_write = 3.75`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PriceTable {
    pub models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// The default table (`prices.default.toml`).
    pub fn builtin() -> Self {
        // The file is part of the source tree and a unit test parses it, so this cannot fail at run time.
        toml::from_str(DEFAULT_PRICES).expect("prices.default.toml parses (checked by a unit test)")
    }

    /// Parses a table from TOML text (the format of `prices.default.toml`).
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// This table with `overrides` laid over it: configured entries replace built-in ones of the same id.
    pub fn with_overrides(mut self, overrides: PriceTable) -> Self {
        self.models.extend(overrides.models);
        self
    }

    /// The price of `model`: its exact id, else the id without a date (`-20251001`) or `-latest` suffix.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        let base = model.strip_suffix("-latest").or_else(|| {
            let (head, tail) = model.rsplit_once('-')?;
            (tail.len() == 8 && tail.bytes().all(|b| b.is_ascii_digit())).then_some(head)
        })?;
        self.models.get(base)
    }

    /// The cost of one call in USD, or `None` when it cannot be known: the model is not in the table, or
    /// the server did not report usage. Unknown is never reported as free.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        if !usage.known {
            return None;
        }
        self.price(model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, read: u64, write: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: read,
            cache_write_tokens: write,
            known: true,
        }
    }

    #[test]
    fn the_builtin_table_parses_and_lists_the_current_models() {
        let t = PriceTable::builtin();
        for id in ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"] {
            assert!(t.price(id).is_some(), "{id} missing");
        }
        assert_eq!(t.price("claude-sonnet-4-6").map(|p| (p.input, p.output)), Some((3.0, 15.0)));
    }

    #[test]
    fn every_token_kind_is_priced_per_million() {
        let t = PriceTable::builtin();
        let cost = t.cost("claude-sonnet-4-6", &usage(1_000_000, 100_000, 2_000_000, 400_000)).expect("priced");
        // 3.00 input + 1.50 output + 0.60 cache read + 1.50 cache write
        assert!((cost - 6.60).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn dated_and_latest_ids_fall_back_to_their_base_id() {
        let t = PriceTable::builtin();
        assert_eq!(t.price("claude-haiku-4-5-20251001"), t.price("claude-haiku-4-5"));
        assert_eq!(t.price("claude-sonnet-4-5-20250929"), t.price("claude-sonnet-4-5"));
        assert_eq!(t.price("claude-3-5-haiku-latest"), t.price("claude-3-5-haiku"));
        assert!(t.price("claude-haiku-4-5-2025").is_none());
    }

    #[test]
    fn unknown_models_and_unreported_usage_cost_unknown_not_zero() {
        let t = PriceTable::builtin();
        assert_eq!(t.cost("qwen2.5-7b-instruct", &usage(10, 10, 0, 0)), None);
        assert_eq!(t.cost("claude-sonnet-4-6", &Usage::default()), None);
    }

    #[test]
    fn configured_prices_override_and_extend_the_defaults() {
        let cfg = PriceTable::from_toml(
            "[\"claude-sonnet-4-6\"]\ninput = 2.0\noutput = 10.0\n[\"qwen2.5-7b-instruct\"]\ninput = 0.0\noutput = 0.0\n",
        )
        .expect("parses");
        let t = PriceTable::builtin().with_overrides(cfg);
        assert_eq!(t.price("claude-sonnet-4-6").map(|p| p.input), Some(2.0));
        assert_eq!(t.cost("qwen2.5-7b-instruct", &usage(1000, 1000, 0, 0)), Some(0.0));
        assert!(PriceTable::from_toml("[m]\ninput = 1.0\noutput = 1.0\ntypo = 3.0\n").is_err());
    }
}
