//! Tiered memory in SQLite with FTS5: `conversation` (exchanges and session summaries, default 7 days),
//! `episodic` (cluster events and actions, 30 days) and `semantic` (facts and preferences, permanent).
//!
//! Every memory keeps its `source`. Facts and preferences come only from the operator's own words
//! (`user:chat`, `user:dashboard`); events from the agent or the monitor (`tool:…`, `monitor:…`). What is
//! recalled goes into the system prompt as data, marked as such, and nothing here is read by the gate.

pub mod extract;
pub mod recall;

use rusqlite::{OptionalExtension, params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{Store, StoreError};

/// `[memory]`: lifetimes and prompt budgets.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Days a conversation memory (exchange, session summary) is kept.
    pub conversation_ttl_days: u32,
    /// Days an episodic memory (cluster event, action) is kept.
    pub episodic_ttl_days: u32,
    /// Days a semantic memory (fact, preference) is kept; 0 = forever.
    pub semantic_ttl_days: u32,
    /// Prompt budget for facts, in tokens (Claude).
    pub facts_tokens: usize,
    /// Prompt budget for recent events, in tokens (Claude).
    pub events_tokens: usize,
    /// Prompt budget for preferences, in tokens (Claude).
    pub preferences_tokens: usize,
    /// Prompt budget for recalled past conversation, in tokens (Claude).
    pub recall_tokens: usize,
    /// Share of the budgets the local model gets (its context is small).
    pub local_budget_share: f64,
    /// Seconds between TTL clean-ups (expired rows deleted, then `PRAGMA optimize`).
    pub cleanup_interval_secs: u64,
    /// Run `VACUUM` after this many clean-ups (0 = never).
    pub vacuum_every: u32,
    /// Every this many new messages of a session, the local model (only it: this never costs money)
    /// refreshes the session's summary memory (0 = only when the context window overflows).
    pub session_summary_every: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            conversation_ttl_days: 7,
            episodic_ttl_days: 30,
            semantic_ttl_days: 0,
            facts_tokens: 500,
            events_tokens: 300,
            preferences_tokens: 200,
            recall_tokens: 400,
            local_budget_share: 0.5,
            cleanup_interval_secs: 3600,
            vacuum_every: 24,
            session_summary_every: 12,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Conversation,
    Episodic,
    Semantic,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Conversation => "conversation",
            Tier::Episodic => "episodic",
            Tier::Semantic => "semantic",
        }
    }
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "conversation" => Some(Tier::Conversation),
            "episodic" => Some(Tier::Episodic),
            "semantic" => Some(Tier::Semantic),
            _ => None,
        }
    }
}

/// A stored memory (times in unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub id: i64,
    pub tier: String,
    pub kind: String,
    pub text: String,
    pub source: String,
    pub session_id: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// RFC 3339 in UTC (whole seconds).
pub use mcp_common::time::iso_time as rfc3339;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl MemoryRow {
    /// The REST shape (`docs/protocol.md`).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "tier": self.tier, "kind": self.kind, "text": self.text, "source": self.source,
            "session_id": self.session_id, "created_at": rfc3339(self.created_at),
            "expires_at": self.expires_at.map(rfc3339),
        })
    }
}

/// A memory to write.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub tier: Tier,
    pub kind: String,
    pub text: String,
    /// De-duplication key (same tier + kind + key = the same memory, updated in place).
    pub key: String,
    pub source: String,
    pub session_id: Option<String>,
}

const COLUMNS: &str = "id, tier, kind, text, source, session_id, created_at, expires_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemoryRow> {
    Ok(MemoryRow {
        id: r.get(0)?,
        tier: r.get(1)?,
        kind: r.get(2)?,
        text: r.get(3)?,
        source: r.get(4)?,
        session_id: r.get(5)?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
    })
}

/// The memory store.
#[derive(Clone)]
pub struct Memory {
    pub store: Store,
    pub cfg: MemoryConfig,
}

impl Memory {
    pub fn new(store: Store, cfg: MemoryConfig) -> Self {
        Self { store, cfg }
    }

    fn ttl_secs(&self, tier: Tier) -> Option<i64> {
        let days = match tier {
            Tier::Conversation => self.cfg.conversation_ttl_days,
            Tier::Episodic => self.cfg.episodic_ttl_days,
            Tier::Semantic => self.cfg.semantic_ttl_days,
        };
        (days > 0).then_some(i64::from(days) * 86_400)
    }

    /// Writes `m` at time `now`; a memory with the same tier, kind and key is updated (text, source,
    /// time, expiry) instead of duplicated. Returns its id.
    pub async fn add(&self, m: NewMemory, now: i64) -> Result<i64, StoreError> {
        let expires = self.ttl_secs(m.tier).map(|t| now + t);
        let key = if m.key.is_empty() { extract::normalize(&m.text) } else { m.key.clone() };
        self.store
            .with(move |c| {
                c.execute(
                    "INSERT INTO memories (tier, kind, text, norm_key, source, session_id, created_at, updated_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                     ON CONFLICT(tier, kind, norm_key) DO UPDATE SET text = excluded.text, source = excluded.source,
                       session_id = excluded.session_id, updated_at = excluded.updated_at, created_at = excluded.created_at,
                       expires_at = excluded.expires_at",
                    params![m.tier.as_str(), m.kind, m.text, key, m.source, m.session_id, now, expires],
                )?;
                Ok(c.query_row(
                    "SELECT id FROM memories WHERE tier = ?1 AND kind = ?2 AND norm_key = ?3",
                    params![m.tier.as_str(), m.kind, key],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    /// An episodic memory of something that happened on the cluster or was done to it: called by the agent
    /// for actions it ran, and by the monitor for alerts and autonomous actions (`source` e.g.
    /// `monitor:auto`). `kind`: `action`, `alert`, `event`, …
    pub async fn remember_event(
        &self,
        kind: &str,
        text: &str,
        source: &str,
        session_id: Option<&str>,
    ) -> Result<i64, StoreError> {
        let t = now();
        let m = NewMemory {
            tier: Tier::Episodic,
            kind: kind.to_string(),
            text: text.to_string(),
            key: format!("{t}:{}", extract::normalize(text)),
            source: source.to_string(),
            session_id: session_id.map(str::to_string),
        };
        self.add(m, t).await
    }

    pub async fn get(&self, id: i64) -> Result<Option<MemoryRow>, StoreError> {
        self.store
            .with(move |c| {
                Ok(c.query_row(&format!("SELECT {COLUMNS} FROM memories WHERE id = ?1"), [id], row).optional()?)
            })
            .await
    }

    /// Memories of `tier` (all when `None`) alive at `now`, newest first; `q` filters by full-text match.
    pub async fn list(
        &self,
        tier: Option<Tier>,
        q: Option<String>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<MemoryRow>, StoreError> {
        if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
            let hits = self.search(&q, tier, None, limit, now).await?;
            return Ok(hits.into_iter().map(|(m, _)| m).collect());
        }
        let tier = tier.map(|t| t.as_str().to_string());
        self.store
            .with(move |c| {
                let mut st = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM memories WHERE (?1 IS NULL OR tier = ?1)
                     AND (expires_at IS NULL OR expires_at > ?2) ORDER BY created_at DESC, id DESC LIMIT ?3"
                ))?;
                let rows = st.query_map(params![tier, now, limit as i64], row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// Edits text and/or tier; the expiry follows the new tier. False when there is no such memory.
    pub async fn update(
        &self,
        id: i64,
        text: Option<String>,
        tier: Option<Tier>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(cur) = self.get(id).await? else { return Ok(false) };
        let tier = tier.or_else(|| Tier::parse(&cur.tier)).unwrap_or(Tier::Semantic);
        let expires = self.ttl_secs(tier).map(|t| now + t);
        let text = text.unwrap_or(cur.text);
        let key = format!("{}:{}", id, extract::normalize(&text));
        self.store
            .with(move |c| {
                let n = c.execute(
                    "UPDATE memories SET text = ?2, tier = ?3, norm_key = ?4, expires_at = ?5, updated_at = ?6 WHERE id = ?1",
                    params![id, text, tier.as_str(), key, expires, now],
                )?;
                Ok(n > 0)
            })
            .await
    }

    pub async fn delete(&self, id: i64) -> Result<bool, StoreError> {
        self.store.with(move |c| Ok(c.execute("DELETE FROM memories WHERE id = ?1", [id])? > 0)).await
    }

    /// Deletes what expired by `now`, then `PRAGMA optimize` (and `VACUUM` when `vacuum`). Returns the
    /// number of memories deleted.
    pub async fn cleanup(&self, now: i64, vacuum: bool) -> Result<usize, StoreError> {
        self.store
            .with(move |c| {
                let n = c.execute("DELETE FROM memories WHERE expires_at IS NOT NULL AND expires_at <= ?1", [now])?;
                c.execute_batch("PRAGMA optimize;")?;
                if vacuum {
                    c.execute_batch("VACUUM;")?;
                }
                Ok(n)
            })
            .await
    }

    /// The scheduled clean-up: every `cleanup_interval_secs` until `stop`.
    pub async fn run_cleanup(self, stop: tokio_util::sync::CancellationToken) {
        let every = std::time::Duration::from_secs(self.cfg.cleanup_interval_secs.max(10));
        let mut runs: u32 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.cancelled() => return,
            }
            runs = runs.wrapping_add(1);
            let vacuum = self.cfg.vacuum_every > 0 && runs.is_multiple_of(self.cfg.vacuum_every);
            match self.cleanup(now(), vacuum).await {
                Ok(n) => tracing::debug!(deleted = n, vacuum, "memory clean-up"),
                Err(e) => tracing::warn!(error = %e, "memory clean-up failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn mem() -> (tempfile::TempDir, Memory) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("m.db")).expect("open");
        (dir, Memory::new(store, MemoryConfig::default()))
    }

    fn new(tier: Tier, kind: &str, text: &str) -> NewMemory {
        NewMemory {
            tier,
            kind: kind.into(),
            text: text.into(),
            key: String::new(),
            source: "user:chat".into(),
            session_id: None,
        }
    }

    #[tokio::test]
    async fn tiers_expire_after_their_ttl_and_cleanup_deletes_them() {
        let (_d, m) = mem().await;
        let t0 = 1_700_000_000;
        m.add(new(Tier::Conversation, "exchange", "we talked about pve1"), t0).await.expect("add");
        m.add(new(Tier::Episodic, "action", "stopped VM 107"), t0).await.expect("add");
        m.add(new(Tier::Semantic, "fact", "my backup storage is pbs-nas"), t0).await.expect("add");
        let day = 86_400;
        assert_eq!(m.list(None, None, 10, t0 + 6 * day).await.expect("list").len(), 3);
        assert_eq!(m.list(None, None, 10, t0 + 8 * day).await.expect("list").len(), 2, "conversation gone after 7 d");
        assert_eq!(m.list(None, None, 10, t0 + 31 * day).await.expect("list").len(), 1, "episodic gone after 30 d");
        assert_eq!(m.cleanup(t0 + 31 * day, true).await.expect("cleanup"), 2);
        let left = m.list(None, None, 10, t0 + 3650 * day).await.expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].tier, "semantic");
        assert_eq!(left[0].expires_at, None);
    }

    #[tokio::test]
    async fn the_same_statement_is_stored_once_and_can_be_edited_and_deleted() {
        let (_d, m) = mem().await;
        let a = m.add(new(Tier::Semantic, "preference", "I prefer short answers"), 10).await.expect("add");
        let b = m.add(new(Tier::Semantic, "preference", "i prefer SHORT answers!"), 20).await.expect("add");
        assert_eq!(a, b);
        assert_eq!(m.list(Some(Tier::Semantic), None, 10, 30).await.expect("list").len(), 1);
        assert!(m.update(a, Some("I prefer terse answers".into()), None, 40).await.expect("update"));
        let hit = m.list(None, Some("terse".into()), 10, 50).await.expect("search");
        assert_eq!(hit.len(), 1, "the full-text index follows edits");
        assert!(m.delete(a).await.expect("delete"));
        assert!(m.list(None, Some("terse".into()), 10, 50).await.expect("search").is_empty());
    }
}
