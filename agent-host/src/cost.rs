//! Cost tracking: one row per model request (tokens in/out, cache tokens, USD from the configured price
//! table), sums per message, session, day, week and month, daily and monthly budget caps (a warning at
//! `warn_ratio`, enforcement at the cap), and `saved_usd`: what the turns the local model answered would
//! have cost on Claude.

use chrono::{Datelike, TimeZone, Utc};
use rusqlite::params;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::llm::{PriceTable, Usage};
use crate::memory::rfc3339;
use crate::store::{Store, StoreError};

/// `[costs]`: prices and budgets.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// Daily cap in USD for paid models (unset = none). At the cap Claude is not used; the local model answers.
    pub daily_budget_usd: Option<f64>,
    /// Monthly cap in USD (calendar month, UTC).
    pub monthly_budget_usd: Option<f64>,
    /// Share of a cap at which a warning is sent (0.8 = 80 %).
    pub warn_ratio: f64,
    /// Prices in USD per million tokens, laid over the built-in table, e.g.
    /// `[costs.prices."qwen2.5-7b-instruct"] input = 0.0, output = 0.0`.
    pub prices: PriceTable,
}

impl Default for CostConfig {
    fn default() -> Self {
        Self { daily_budget_usd: None, monthly_budget_usd: None, warn_ratio: 0.8, prices: PriceTable::default() }
    }
}

/// One model request to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub session_id: Option<String>,
    pub provider: String,
    pub model: String,
    pub usage: Usage,
    /// Null when the cost cannot be known (model without price, usage not reported).
    pub usd: Option<f64>,
    /// For a local request: what the same tokens would have cost on the reference Claude model.
    pub saved_usd: f64,
}

/// Budget state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    Ok,
    Warn,
    Over,
}

/// Start of the UTC day, ISO week (Monday) and calendar month containing `now`.
pub fn periods(now: i64) -> (i64, i64, i64) {
    let Some(t) = Utc.timestamp_opt(now, 0).single() else { return (now, now, now) };
    let day = t.date_naive();
    let start = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).map_or(now, |x| x.and_utc().timestamp());
    let week = day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let month = day.with_day(1).unwrap_or(day);
    (start(day), start(week), start(month))
}

/// The cost ledger.
#[derive(Clone)]
pub struct Costs {
    pub store: Store,
    pub cfg: CostConfig,
    pub prices: PriceTable,
}

impl Costs {
    pub fn new(store: Store, cfg: CostConfig) -> Self {
        let prices = PriceTable::builtin().with_overrides(cfg.prices.clone());
        Self { store, cfg, prices }
    }

    /// Prices `usage` of `model`; for a free (local) model also what `reference` would have cost.
    pub fn price(&self, model: &str, usage: &Usage, reference: &str) -> (Option<f64>, f64) {
        let usd = self.prices.cost(model, usage);
        let claude = self.prices.price(reference).map_or(0.0, |p| p.cost(usage));
        let saved = if usd.unwrap_or(0.0) < claude { claude - usd.unwrap_or(0.0) } else { 0.0 };
        (usd, saved)
    }

    pub async fn record(&self, r: Request, now: i64) -> Result<(), StoreError> {
        self.store
            .with(move |c| {
                c.execute(
                    "INSERT INTO costs (ts, session_id, provider, model, input_tokens, output_tokens, cache_read_tokens,
                       cache_write_tokens, usage_known, usd, saved_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        now,
                        r.session_id,
                        r.provider,
                        r.model,
                        r.usage.input_tokens as i64,
                        r.usage.output_tokens as i64,
                        r.usage.cache_read_tokens as i64,
                        r.usage.cache_write_tokens as i64,
                        r.usage.known,
                        r.usd,
                        r.saved_usd
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// Puts a turn's tokens and cost on the session's newest assistant message (cost per message).
    pub async fn attach_to_last_message(
        &self,
        session: &str,
        usage: Usage,
        usd: Option<f64>,
    ) -> Result<(), StoreError> {
        let s = session.to_string();
        self.store
            .with(move |c| {
                c.execute(
                    "UPDATE messages SET input_tokens = ?2, output_tokens = ?3, cost_usd = ?4 WHERE id =
                       (SELECT MAX(id) FROM messages WHERE session_id = ?1 AND role = 'assistant')",
                    params![
                        s,
                        (usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens) as i64,
                        usage.output_tokens as i64,
                        usd.unwrap_or(0.0)
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// USD spent in `[from, to)`: model requests plus [`extra_cost_sources`].
    pub async fn spent(&self, from: i64, to: i64) -> Result<f64, StoreError> {
        self.store
            .with(move |c| {
                let llm: f64 = c.query_row(
                    "SELECT COALESCE(SUM(usd), 0) FROM costs WHERE ts >= ?1 AND ts < ?2",
                    params![from, to],
                    |r| r.get(0),
                )?;
                Ok(llm + extra_cost_sources(c, from, to).iter().map(|(_, usd, _)| usd).sum::<f64>())
            })
            .await
    }

    /// USD of one session's requests.
    pub async fn session_usd(&self, session: &str) -> Result<f64, StoreError> {
        let s = session.to_string();
        self.store
            .with(move |c| {
                Ok(c.query_row("SELECT COALESCE(SUM(usd), 0) FROM costs WHERE session_id = ?1", [s], |r| r.get(0))?)
            })
            .await
    }

    /// Budget state at `now` and the (daily, monthly) USD used.
    pub async fn budget(&self, now: i64) -> Result<(BudgetState, f64, f64), StoreError> {
        let (day, _, month) = periods(now);
        let daily = self.spent(day, now + 1).await?;
        let monthly = self.spent(month, now + 1).await?;
        let ratio = |used: f64, cap: Option<f64>| {
            cap.filter(|c| *c >= 0.0).map(|c| if c == 0.0 { f64::INFINITY } else { used / c })
        };
        let worst = [ratio(daily, self.cfg.daily_budget_usd), ratio(monthly, self.cfg.monthly_budget_usd)]
            .into_iter()
            .flatten()
            .fold(0.0_f64, f64::max);
        let state = if worst >= 1.0 {
            BudgetState::Over
        } else if worst >= self.cfg.warn_ratio {
            BudgetState::Warn
        } else {
            BudgetState::Ok
        };
        Ok((state, daily, monthly))
    }

    /// The cost summary of `GET /api/costs` and the WS `cost` event.
    pub async fn summary(&self, now: i64) -> Result<Value, StoreError> {
        let (day, week, month) = periods(now);
        let (state, daily_used, monthly_used) = self.budget(now).await?;
        let (daily_cap, monthly_cap) = (self.cfg.daily_budget_usd, self.cfg.monthly_budget_usd);
        self.store
            .with(move |c| {
                let period = |from: i64| -> rusqlite::Result<Value> {
                    let (usd, n, i, o): (f64, i64, i64, i64) = c.query_row(
                        "SELECT COALESCE(SUM(usd),0), COUNT(*), COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens),0),
                           COALESCE(SUM(output_tokens),0) FROM costs WHERE ts >= ?1 AND ts <= ?2",
                        params![from, now],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?;
                    let extra: f64 = extra_cost_sources(c, from, now + 1).iter().map(|(_, usd, _)| usd).sum();
                    Ok(json!({"usd": usd + extra, "requests": n, "input_tokens": i, "output_tokens": o}))
                };
                let (today, wk, mo) = (period(day)?, period(week)?, period(month)?);
                let mut st = c.prepare(
                    "SELECT provider, model, COUNT(*), SUM(input_tokens + cache_read_tokens + cache_write_tokens),
                       SUM(output_tokens), COALESCE(SUM(usd),0) FROM costs WHERE ts >= ?1 GROUP BY provider, model
                     ORDER BY 6 DESC",
                )?;
                let by_provider = st
                    .query_map([month], |r| {
                        Ok(json!({"provider": r.get::<_, String>(0)?, "model": r.get::<_, String>(1)?,
                            "requests": r.get::<_, i64>(2)?, "input_tokens": r.get::<_, i64>(3)?,
                            "output_tokens": r.get::<_, i64>(4)?, "usd": r.get::<_, f64>(5)?}))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut st = c.prepare(
                    "SELECT ts, session_id, provider, model, input_tokens + cache_read_tokens + cache_write_tokens,
                       output_tokens, usd FROM costs ORDER BY id DESC LIMIT 20",
                )?;
                let recent = st
                    .query_map([], |r| {
                        Ok(json!({"ts": rfc3339(r.get(0)?), "session_id": r.get::<_, Option<String>>(1)?,
                            "provider": r.get::<_, String>(2)?, "model": r.get::<_, String>(3)?,
                            "input_tokens": r.get::<_, i64>(4)?, "output_tokens": r.get::<_, i64>(5)?,
                            "usd": r.get::<_, Option<f64>>(6)?}))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let saved: f64 =
                    c.query_row("SELECT COALESCE(SUM(saved_usd),0) FROM costs WHERE ts >= ?1", [month], |r| r.get(0))?;
                Ok(json!({
                    "currency": "USD", "today": today, "week": wk, "month": mo,
                    "budget": {"daily_usd": daily_cap, "monthly_usd": monthly_cap, "daily_used": daily_used,
                               "monthly_used": monthly_used, "state": state},
                    "by_provider": by_provider, "recent": recent, "saved_usd": saved,
                }))
            })
            .await
    }
}

/// Costs recorded outside the model ledger, summed per source for `[from, to)`: `(source, usd, count)`.
///
/// Today: paid TTS, from the `tts_costs` table the voice pipeline writes (`Store::record_tts_cost`; `ts` unix
/// seconds) and `usd REAL`. When the table does not exist, or has another shape, it contributes nothing.
pub fn extra_cost_sources(c: &rusqlite::Connection, from: i64, to: i64) -> Vec<(String, f64, i64)> {
    let mut out = Vec::new();
    let exists =
        c.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tts_costs'", [], |_| Ok(())).is_ok();
    if exists {
        match c.query_row(
            "SELECT COALESCE(SUM(usd), 0), COUNT(*) FROM tts_costs WHERE ts >= ?1 AND ts < ?2",
            params![from, to],
            |r| Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)?)),
        ) {
            Ok((usd, n)) => out.push(("tts".to_string(), usd, n)),
            Err(e) => tracing::debug!(error = %e, "tts_costs has an unexpected shape; not counted"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(i: u64, o: u64, r: u64, w: u64, known: bool) -> Usage {
        Usage { input_tokens: i, output_tokens: o, cache_read_tokens: r, cache_write_tokens: w, known }
    }

    async fn ledger(cfg: CostConfig) -> (tempfile::TempDir, Costs) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("c.db")).expect("open");
        (dir, Costs::new(store, cfg))
    }

    #[test]
    fn periods_start_at_utc_midnight_monday_and_the_first() {
        // 2026-11-25 is a Wednesday.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).single().expect("date").timestamp();
        let (d, w, m) = periods(now);
        assert_eq!(rfc3339(d), "2026-11-25T00:00:00Z");
        assert_eq!(rfc3339(w), "2026-11-23T00:00:00Z");
        assert_eq!(rfc3339(m), "2026-11-01T00:00:00Z");
    }

    #[tokio::test]
    async fn the_budget_warns_at_80_percent_and_is_over_at_the_cap_tts_included() {
        let (_d, c) = ledger(CostConfig { daily_budget_usd: Some(1.0), ..Default::default() }).await;
        let now = 1_764_000_000;
        let req = |usd: f64| Request {
            session_id: Some("s".into()),
            provider: "anthropic".into(),
            model: "claude-sonnet-4-6".into(),
            usage: usage(1, 1, 0, 0, true),
            usd: Some(usd),
            saved_usd: 0.0,
        };
        c.record(req(0.5), now).await.expect("record");
        assert_eq!(c.budget(now).await.expect("budget").0, BudgetState::Ok);
        c.record(req(0.3), now).await.expect("record");
        assert_eq!(c.budget(now).await.expect("budget").0, BudgetState::Warn);
        c.store
            .with(move |conn| {
                // What `Store::record_tts_cost` writes for a paid TTS engine (the voice pipeline).
                conn.execute(
                    "INSERT INTO tts_costs (ts, engine, chars, usd) VALUES (?1, 'openai', 1000, 0.25)",
                    [now],
                )?;
                Ok(())
            })
            .await
            .expect("tts table");
        let (state, daily, _) = c.budget(now).await.expect("budget");
        assert_eq!(state, BudgetState::Over);
        assert!((daily - 1.05).abs() < 1e-9, "{daily}");
        assert!((c.session_usd("s").await.expect("session") - 0.8).abs() < 1e-9);
        let s = c.summary(now).await.expect("summary");
        assert_eq!(s["budget"]["state"], "over");
        assert_eq!(s["today"]["requests"], 2);
    }

    #[test]
    fn local_tokens_are_saved_at_the_reference_claude_price() {
        let cfg = CostConfig {
            prices: PriceTable::from_toml("[\"qwen2.5-7b-instruct\"]\ninput = 0.0\noutput = 0.0\n").expect("prices"),
            ..Default::default()
        };
        let c = Costs::new(Store::open(std::path::Path::new(":memory:")).expect("open"), cfg);
        let (usd, saved) = c.price("qwen2.5-7b-instruct", &usage(1_000_000, 100_000, 0, 0, true), "claude-sonnet-4-6");
        assert_eq!(usd, Some(0.0));
        assert!((saved - 4.5).abs() < 1e-9, "{saved}");
        // Anthropic usage with cache tokens: 3.00 + 1.50 + 0.60 + 1.50.
        let (usd, saved) =
            c.price("claude-sonnet-4-6", &usage(1_000_000, 100_000, 2_000_000, 400_000, true), "claude-sonnet-4-6");
        assert!((usd.unwrap_or(0.0) - 6.6).abs() < 1e-9);
        assert_eq!(saved, 0.0);
    }
}
